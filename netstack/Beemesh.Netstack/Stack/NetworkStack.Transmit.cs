using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Stack;

public sealed partial class NetworkStack
{
    private const int MaxQueuedPerNeighbor = 16;
    private const int MaxWaitingNeighbors = 64;
    private readonly Dictionary<UInt128, ulong> _neighbors = new();
    private readonly Dictionary<UInt128, Queue<byte[]>> _waitingForNeighbor = new();
    private readonly Dictionary<UInt128, TimeSpan> _lastSolicit = new();

    /// <summary>The frame buffer transmit paths build into (loop thread only).</summary>
    internal Span<byte> TxBuffer => _tx;

    /// <summary>True when TCP super-segments larger than the MTU may be written to the link.</summary>
    internal bool SegmentationOffload => _link.Offload;

    /// <summary>Length of the IP header for an address family.</summary>
    internal static int IpHeaderLength(UInt128 address) => IpAddr.IsV4(address) ? Ipv4Packet.MinHeaderLength : Ipv6Packet.HeaderLength;

    /// <summary>Where the transport header of a packet to <paramref name="dst"/> starts in <see cref="TxBuffer"/>.</summary>
    internal int TransportOffset(UInt128 dst) => PacketBuilder.TransportOffsetFor(_link.VnetHeader, IpAddr.IsV4(dst));

    /// <summary>The stack's own MAC, the source of every frame it sends.</summary>
    internal MacAddress RouterMac => MacAddress.FromUInt64(_routerMac);

    /// <summary>
    /// Starts a packet in <see cref="TxBuffer"/> from <paramref name="src"/> to <paramref name="dst"/> carrying
    /// <paramref name="l4Length"/> bytes of <paramref name="protocol"/>: the Ethernet header from the router MAC and the
    /// IP header (IPv4 with DF and the next identification). The builder's <c>Write*</c> methods finish it.
    /// </summary>
    internal PacketBuilder StartPacket(UInt128 src, UInt128 dst, IpProtocol protocol, int l4Length, byte hopLimit = 64)
    {
        var builder = new PacketBuilder(_tx, _link.VnetHeader);
        if (IpAddr.IsV4(dst))
        {
            builder.StartIpv4(RouterMac, new Ipv4Repr(IpAddr.ToIpv4Address(src), IpAddr.ToIpv4Address(dst), protocol, l4Length, hopLimit)
            {
                Identification = _ipId++,
            });
        }
        else
        {
            builder.StartIpv6(RouterMac, new Ipv6Repr(IpAddr.ToIpv6Address(src), IpAddr.ToIpv6Address(dst), protocol, l4Length, hopLimit));
        }

        return builder;
    }

    /// <summary>Sends the frame in <see cref="TxBuffer"/> (<paramref name="length"/> bytes incl. vnet header) to the guest owning <paramref name="dst"/>.</summary>
    internal void SendToGuest(UInt128 dst, int length)
    {
        var f = _tx.AsSpan(0, length);
        if (!_neighbors.TryGetValue(dst, out ulong mac))
        {
            if (IsUnicastGuestAddress(dst))
            {
                Enqueue(dst, f);
            }
            else
            {
                Counters.NeighborQueueDrops++; // never resolve 0.0.0.0, broadcast or multicast
            }

            return;
        }

        PacketBuilder.SetDestination(f, _l2, MacAddress.FromUInt64(mac));
        Transmit(f);
    }

    /// <summary>Sends a frame whose Ethernet destination is already written.</summary>
    internal void Transmit(ReadOnlySpan<byte> frame)
    {
        if (_link.Write(frame))
        {
            Counters.FramesSent++;
        }
    }

    private void Learn(UInt128 ip, ulong mac)
    {
        if ((mac & 0x0100_0000_0000UL) != 0)
        {
            return; // never learn a multicast source
        }

        if (_neighbors.TryGetValue(ip, out ulong known) && known == mac)
        {
            return;
        }

        _neighbors[ip] = mac;
        _lastSolicit.Remove(ip);
        if (_waitingForNeighbor.Remove(ip, out var queue))
        {
            while (queue.TryDequeue(out var frame))
            {
                PacketBuilder.SetDestination(frame, _l2, MacAddress.FromUInt64(mac));
                Transmit(frame);
            }
        }
    }

    /// <summary>Drops queues for addresses that did not answer within 3 s (their frames are stale anyway).</summary>
    private void ForgetUnansweredNeighbors()
    {
        var now = Now;
        foreach (var (ip, asked) in _lastSolicit)
        {
            if (now - asked > TimeSpan.FromSeconds(3) && _waitingForNeighbor.Remove(ip, out var stale))
            {
                Counters.NeighborQueueDrops += stale.Count;
                _lastSolicit.Remove(ip);
            }
        }
    }

    private bool IsUnicastGuestAddress(UInt128 a)
    {
        if (IpAddr.IsV4(a))
        {
            uint v = IpAddr.ToV4(a);
            return v != 0 && v != uint.MaxValue && (v >> 28) != 0xE && v != (_network | ~_netmask);
        }

        return a != UInt128.Zero && (byte)(a >> 120) != 0xFF;
    }

    private void Enqueue(UInt128 dst, ReadOnlySpan<byte> frame)
    {
        if (!_waitingForNeighbor.TryGetValue(dst, out var queue))
        {
            if (_waitingForNeighbor.Count >= MaxWaitingNeighbors)
            {
                ForgetUnansweredNeighbors();
            }

            if (_waitingForNeighbor.Count >= MaxWaitingNeighbors)
            {
                Counters.NeighborQueueDrops++; // bounded: a guest cannot make us queue for any number of addresses
                return;
            }

            queue = new Queue<byte[]>();
            _waitingForNeighbor[dst] = queue;
        }

        if (queue.Count >= MaxQueuedPerNeighbor)
        {
            queue.Dequeue();
            Counters.NeighborQueueDrops++;
        }

        queue.Enqueue(frame.ToArray());
        var now = Now;
        if (!_lastSolicit.TryGetValue(dst, out var last) || now - last > TimeSpan.FromMilliseconds(500))
        {
            _lastSolicit[dst] = now;
            if (IpAddr.IsV4(dst))
            {
                SendArpRequest(dst);
            }
            else
            {
                SendNeighborSolicitation(dst);
            }
        }
    }
}
