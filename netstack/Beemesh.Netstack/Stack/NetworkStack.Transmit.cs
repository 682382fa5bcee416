using System.Buffers.Binary;
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

    /// <summary>Offset of the Ethernet header inside a frame buffer (after the vnet header, if any).</summary>
    internal int L2Offset => _l2;

    /// <summary>True when frames may carry partial checksums and super-segments (vnet header present).</summary>
    internal bool ChecksumOffload => _link.VnetHeader;

    /// <summary>True when TCP super-segments larger than the MTU may be written to the link.</summary>
    internal bool SegmentationOffload => _link.Offload;

    /// <summary>Length of the IP header for an address family.</summary>
    internal static int IpHeaderLength(UInt128 address) => IpAddr.IsV4(address) ? 20 : 40;

    /// <summary>
    /// Writes Ethernet source/type and the IP header for a packet from <paramref name="src"/> to
    /// <paramref name="dst"/> carrying <paramref name="l4Length"/> bytes of <paramref name="protocol"/>.
    /// Returns the offset of the transport header in <see cref="TxBuffer"/>.
    /// </summary>
    internal int WriteIpHeader(UInt128 src, UInt128 dst, IpProtocol protocol, int l4Length, byte hopLimit = 64)
    {
        var f = _tx.AsSpan();
        int eth = _l2;
        WriteMac(_routerMac, f.Slice(eth + 6, 6));
        int ip = eth + EthernetHeaderLength;
        if (IpAddr.IsV4(dst))
        {
            BinaryPrimitives.WriteUInt16BigEndian(f[(eth + 12)..], 0x0800);
            var h = f.Slice(ip, 20);
            h[0] = 0x45;
            h[1] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(h[2..], (ushort)(20 + l4Length));
            BinaryPrimitives.WriteUInt16BigEndian(h[4..], _ipId++);
            BinaryPrimitives.WriteUInt16BigEndian(h[6..], 0x4000); // DF
            h[8] = hopLimit;
            h[9] = (byte)protocol;
            h[10] = 0;
            h[11] = 0;
            BinaryPrimitives.WriteUInt32BigEndian(h[12..], IpAddr.ToV4(src));
            BinaryPrimitives.WriteUInt32BigEndian(h[16..], IpAddr.ToV4(dst));
            BinaryPrimitives.WriteUInt16BigEndian(h[10..], InternetChecksum.Fold(InternetChecksum.Sum(h)));
            return ip + 20;
        }

        BinaryPrimitives.WriteUInt16BigEndian(f[(eth + 12)..], 0x86DD);
        var h6 = f.Slice(ip, 40);
        BinaryPrimitives.WriteUInt32BigEndian(h6, 0x60000000);
        BinaryPrimitives.WriteUInt16BigEndian(h6[4..], (ushort)l4Length);
        h6[6] = (byte)protocol;
        h6[7] = hopLimit;
        BinaryPrimitives.WriteUInt128BigEndian(h6[8..], src);
        BinaryPrimitives.WriteUInt128BigEndian(h6[24..], dst);
        return ip + 40;
    }

    /// <summary>
    /// Fills the transport checksum of the packet built in <see cref="TxBuffer"/> (the IP header
    /// ends at <paramref name="l4Offset"/>) and the vnet header: with a vnet header the field gets
    /// only the pseudo-header sum and the kernel is told NEEDS_CSUM (it verifies nothing for
    /// locally delivered packets); <paramref name="gsoSize"/> &gt; 0 marks a TCP super-segment.
    /// </summary>
    internal void FinishTransport(int l4Offset, int l4Length, IpProtocol protocol, int checksumOffset, int gsoSize = 0)
    {
        var f = _tx.AsSpan();
        int ip = _l2 + EthernetHeaderLength;
        bool v4 = (f[ip] >> 4) == 4;
        var srcDst = v4 ? f.Slice(ip + 12, 8) : f.Slice(ip + 8, 32);
        uint pseudo = InternetChecksum.Sum(srcDst) + (uint)protocol + (uint)l4Length;
        var l4 = f.Slice(l4Offset, l4Length);
        l4[checksumOffset] = 0;
        l4[checksumOffset + 1] = 0;
        if (_link.VnetHeader && protocol != IpProtocol.Icmp)
        {
            ushort partial = (ushort)~InternetChecksum.Fold(pseudo);
            BinaryPrimitives.WriteUInt16BigEndian(l4[checksumOffset..], partial);
            var v = f[.._l2];
            v[0] = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM
            v[1] = gsoSize > 0 ? (v4 ? (byte)1 : (byte)4) : (byte)0; // GSO_TCPV4 / GSO_TCPV6
            int headers = l4Offset - _l2 + (protocol == IpProtocol.Tcp ? (l4[12] >> 4) * 4 : 8);
            BinaryPrimitives.WriteUInt16LittleEndian(v[2..], (ushort)headers);
            BinaryPrimitives.WriteUInt16LittleEndian(v[4..], (ushort)gsoSize);
            BinaryPrimitives.WriteUInt16LittleEndian(v[6..], (ushort)(l4Offset - _l2));
            BinaryPrimitives.WriteUInt16LittleEndian(v[8..], (ushort)checksumOffset);
            return;
        }

        ushort sum = InternetChecksum.Fold(InternetChecksum.Sum(l4, protocol == IpProtocol.Icmp ? 0 : pseudo));
        if (sum == 0 && protocol == IpProtocol.Udp)
        {
            sum = 0xFFFF; // RFC 768: a computed zero is sent as all ones
        }

        BinaryPrimitives.WriteUInt16BigEndian(l4[checksumOffset..], sum);
        if (_l2 > 0)
        {
            f[.._l2].Clear();
        }
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

        WriteMac(mac, f.Slice(_l2, 6));
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
                WriteMac(mac, frame.AsSpan(_l2, 6));
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
