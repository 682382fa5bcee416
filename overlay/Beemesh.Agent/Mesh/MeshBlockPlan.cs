using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// How the mesh CIDR is cut into equal blocks, one per node (sans-IO, deterministic). Block
/// <c>i</c> is the <c>i</c>-th aligned range of <see cref="BlockPrefix"/> bits inside
/// <see cref="Cidr"/>. A node starts probing at the block its node id (a SHA-256 of its node SPIFFE
/// ID) selects and takes the first one no other node claims (linear probing), so a fresh node lands
/// where the same inputs always put it. Every node of a mesh must use the same CIDR and block size:
/// a claim of another shape is not a claim (<see cref="TryIndexOf(IPNetwork, out int)"/>).
/// </summary>
public sealed class MeshBlockPlan
{
    /// <summary>Default block size: a /24 (254 workload names) per node.</summary>
    public const int DefaultBlockPrefix = 24;

    /// <summary>Smallest block: a /30 still holds two addresses.</summary>
    public const int MaxBlockPrefix = 30;

    /// <summary>Most blocks one CIDR may be cut into (2^24), so a block index fits the probing sets.</summary>
    public const int MaxBlockBits = 24;

    private readonly uint _base;
    private readonly int _hostBits;

    /// <summary>A plan of <paramref name="cidr"/> (IPv4) in blocks of <paramref name="blockPrefix"/> bits; <see cref="ArgumentException"/> with one line when they do not fit.</summary>
    public MeshBlockPlan(string cidr, int blockPrefix)
    {
        if (!IPNetwork.TryParse(cidr, out IPNetwork network) || network.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"'{cidr}' is not an IPv4 CIDR range.");
        }

        if (blockPrefix < network.PrefixLength || blockPrefix > MaxBlockPrefix)
        {
            throw new ArgumentException($"mesh block prefix /{blockPrefix} must be between the mesh CIDR's /{network.PrefixLength} and /{MaxBlockPrefix}");
        }

        if (blockPrefix - network.PrefixLength > MaxBlockBits)
        {
            throw new ArgumentException($"mesh block prefix /{blockPrefix} cuts {cidr} into more than 2^{MaxBlockBits} blocks");
        }

        Cidr = network;
        BlockPrefix = blockPrefix;
        _base = ToUInt(network.BaseAddress);
        _hostBits = 32 - blockPrefix;
        Count = 1 << (blockPrefix - network.PrefixLength);
    }

    /// <summary>The mesh CIDR.</summary>
    public IPNetwork Cidr { get; }

    /// <summary>Prefix length of every block.</summary>
    public int BlockPrefix { get; }

    /// <summary>Number of blocks.</summary>
    public int Count { get; }

    /// <summary>Block number <paramref name="index"/> (0 ≤ index &lt; <see cref="Count"/>).</summary>
    public IPNetwork Block(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return new IPNetwork(FromUInt(_base + ((uint)index << _hostBits)), BlockPrefix);
    }

    /// <summary>Where node <paramref name="nodeId"/> starts probing.</summary>
    public int StartIndex(ulong nodeId) => (int)(nodeId % (ulong)Count);

    /// <summary>
    /// The index of <paramref name="block"/> when it is one of this plan's blocks (inside the CIDR,
    /// aligned, of the plan's size); false for anything else.
    /// </summary>
    public bool TryIndexOf(IPNetwork block, out int index)
    {
        index = -1;
        if (block.BaseAddress.AddressFamily != AddressFamily.InterNetwork || block.PrefixLength != BlockPrefix || !Cidr.Contains(block.BaseAddress))
        {
            return false;
        }

        uint offset = ToUInt(block.BaseAddress) - _base;
        if ((offset & ((1u << _hostBits) - 1)) != 0)
        {
            return false;
        }

        index = (int)(offset >> _hostBits);
        return true;
    }

    /// <summary>As <see cref="TryIndexOf(IPNetwork, out int)"/> for the canonical text form (<c>10.200.7.0/24</c>); false for any other text.</summary>
    public bool TryIndexOf(string? block, out int index)
    {
        index = -1;
        return block is not null && IPNetwork.TryParse(block, out IPNetwork network) && network.ToString() == block && TryIndexOf(network, out index);
    }

    /// <summary>
    /// The block node <paramref name="nodeId"/> takes: the first, probing from
    /// <see cref="StartIndex"/> upwards (wrapping), whose index is not in <paramref name="taken"/>;
    /// null when every block is taken.
    /// </summary>
    public int? Choose(ulong nodeId, IReadOnlySet<int> taken)
    {
        ArgumentNullException.ThrowIfNull(taken);
        if (taken.Count >= Count && Enumerable.Range(0, Count).All(taken.Contains))
        {
            return null;
        }

        int start = StartIndex(nodeId);
        for (int i = 0; i < Count; i++)
        {
            int candidate = (int)(((long)start + i) % Count);
            if (!taken.Contains(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static uint ToUInt(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }

    private static IPAddress FromUInt(uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return new IPAddress(bytes);
    }
}
