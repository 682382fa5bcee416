using System.Net;
using System.Net.Sockets;

namespace Beemesh.Agent.Workloads;

/// <summary>
/// Hands out IPv4 addresses of a CIDR range, one per key (<c>namespace/name</c>), and remembers each
/// key's address after its workloads are gone, so a restarted workload keeps the address peers
/// cached. Only when the range is full are addresses of keys without live workloads reused.
/// The network and broadcast addresses are never handed out (except in /31 and /32). Not thread-safe.
/// </summary>
internal sealed class MeshAddressPool
{
    private readonly uint _first;
    private readonly uint _count;
    private readonly Dictionary<string, uint> _byKey = new(StringComparer.Ordinal);
    private readonly Dictionary<uint, string> _byAddress = [];
    private uint _next;

    public MeshAddressPool(string cidr)
    {
        if (!IPNetwork.TryParse(cidr, out IPNetwork network) || network.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"'{cidr}' is not an IPv4 CIDR range.", nameof(cidr));
        }

        uint baseAddress = ToUInt(network.BaseAddress);
        ulong size = 1UL << (32 - network.PrefixLength);
        if (size <= 2)
        {
            _first = baseAddress;
            _count = (uint)size;
        }
        else
        {
            _first = baseAddress + 1;
            _count = (uint)(size - 2);
        }

        Network = network;
    }

    public IPNetwork Network { get; }

    /// <summary>Returns the address of <paramref name="key"/>, allocating one if needed; null when the range is exhausted.</summary>
    public IPAddress? Allocate(string key, Func<string, bool> isLive)
    {
        if (_byKey.TryGetValue(key, out uint known))
        {
            return FromUInt(known);
        }

        for (uint i = 0; i < _count; i++)
        {
            uint offset = (_next + i) % _count;
            uint candidate = _first + offset;
            if (!_byAddress.ContainsKey(candidate))
            {
                _next = offset + 1;
                return Assign(key, candidate);
            }
        }

        // Full: reuse the address of a key none of whose workloads is registered any more.
        foreach (KeyValuePair<string, uint> entry in _byKey)
        {
            if (!isLive(entry.Key))
            {
                _byKey.Remove(entry.Key);
                return Assign(key, entry.Value);
            }
        }

        return null;
    }

    /// <summary>Every key's address, for storing.</summary>
    public Dictionary<string, string> Assignments()
    {
        var all = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (KeyValuePair<string, uint> entry in _byKey)
        {
            all[entry.Key] = FromUInt(entry.Value).ToString();
        }

        return all;
    }

    /// <summary>Takes back a stored assignment; false when the address is not one this pool hands out or is taken.</summary>
    public bool Restore(string key, string address)
    {
        if (!IPAddress.TryParse(address, out IPAddress? parsed) || parsed.AddressFamily != AddressFamily.InterNetwork || !Network.Contains(parsed))
        {
            return false;
        }

        uint value = ToUInt(parsed);
        if (value < _first || value - _first >= _count || _byAddress.ContainsKey(value) || _byKey.ContainsKey(key))
        {
            return false;
        }

        Assign(key, value);
        return true;
    }

    private IPAddress Assign(string key, uint address)
    {
        _byKey[key] = address;
        _byAddress[address] = key;
        return FromUInt(address);
    }

    private static uint ToUInt(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }

    private static IPAddress FromUInt(uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return new IPAddress(bytes);
    }
}
