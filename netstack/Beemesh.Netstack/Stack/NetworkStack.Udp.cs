using Beemesh.Netstack.Dhcp;
using Beemesh.Netstack.Nat;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Stack;

public sealed partial class NetworkStack
{
    private readonly Dictionary<FlowKey, UdpFlow> _udpFlows = new();
    private readonly LinkedList<UdpFlow> _udpByAge = new(); // mappings other than DNS, oldest first
    private readonly LinkedList<UdpFlow> _dnsByAge = new(); // DNS forwarder mappings, least recently active first
    private DnsSweeper? _dnsSweeper;
    private TimeSpan? _dnsSweepAt;
    private readonly Dictionary<FlowKey, IcmpEchoFlow> _echoFlows = new();
    private readonly DhcpServer _dhcp;

    /// <summary>Live UDP mappings (loop thread).</summary>
    internal int UdpFlowCount => _udpFlows.Count;

    private static DhcpServer CreateDhcpServer(StackOptions o) => new(new DhcpServerOptions
    {
        Network = o.Network,
        PrefixLength = o.PrefixLength,
        Gateway = o.Gateway,
        Dns = [o.Dns],
        PoolStart = o.DhcpStart,
    });

    private void HandleUdp(UInt128 src, UInt128 dst, Span<byte> datagram, bool checksumTrusted, ulong srcMac)
    {
        if (!UdpPacket.TryCreate(datagram, out var udp))
        {
            Counters.MalformedFrames++;
            return;
        }

        // A zero checksum means "none" for UDP over IPv4 only (RFC 768; RFC 8200 §8.1 forbids it for IPv6).
        bool checksumOk = checksumTrusted || (IpAddr.IsV4(src)
            ? udp.VerifyChecksumV4(IpAddr.ToIpv4Address(src), IpAddr.ToIpv4Address(dst))
            : udp.VerifyChecksumV6(IpAddr.ToIpv6Address(src), IpAddr.ToIpv6Address(dst)));
        if (!checksumOk)
        {
            Counters.BadChecksums++;
            return;
        }

        ushort srcPort = udp.SourcePort;
        ushort dstPort = udp.DestinationPort;
        if (dstPort == 67 && IpAddr.IsV4(dst) && (IpAddr.ToV4(dst) == uint.MaxValue || dst == Gateway4))
        {
            HandleDhcp(udp.Payload, srcMac);
            return;
        }

        var key = new FlowKey(src, srcPort, dst, dstPort);
        if (!_udpFlows.TryGetValue(key, out var flow))
        {
            bool dns = dst == Dns4 || dst == Dns6;
            if (!TryMapOutbound(dst, dstPort, out var host, out ushort hostPort) || !MakeRoomForUdpFlow(dns))
            {
                Counters.UdpSendErrors++;
                return;
            }

            flow = UdpFlow.Connect(this, key, host, hostPort, dns ? _options.DnsUdpTimeout : _options.UdpTimeout, dns);
            if (flow is null)
            {
                Counters.UdpSendErrors++;
                return;
            }

            AddUdpFlow(flow);
        }

        try
        {
            flow.SendFromGuest(udp.Payload);
        }
        catch (Exception e) when (!EventLoop.IsFatal(e))
        {
            ContainFault(flow, e);
        }
    }

    private void HandleDhcp(ReadOnlySpan<byte> request, ulong clientMac)
    {
        const int ServerPort = 67;
        const int ClientPort = 68;
        int payloadAt = TransportOffset(Gateway4) + UdpPacket.HeaderLength;
        var reply = _tx.AsSpan(payloadAt, 1500);
        if (!_dhcp.TryHandle(request, reply, out int length, out bool broadcast))
        {
            return;
        }

        // yiaddr (RFC 2131 §2) is where a unicast reply goes; a reply always holds the fixed header.
        uint yiaddr = DhcpMessage.TryCreate(reply[..length], out var message) ? message.YourAddress : 0;
        var to = broadcast || yiaddr == 0 ? IpAddr.FromV4(uint.MaxValue) : IpAddr.FromV4(yiaddr);
        var udp = new UdpRepr(ServerPort, ClientPort, length);
        var builder = StartPacket(Gateway4, to, IpProtocol.Udp, udp.BufferLength);
        int frameLength = builder.WriteUdp(udp);
        Counters.DhcpReplies++;
        SendToMac(broadcast ? 0xFFFF_FFFF_FFFFUL : clientMac, frameLength);
    }

    /// <summary>Adds a mapping created by a UDP port-forwarding listener.</summary>
    internal bool TryAddUdpFlow(UdpFlow flow)
    {
        if (_udpFlows.ContainsKey(flow.Key) || !MakeRoomForUdpFlow(flow.IsDns))
        {
            return false;
        }

        AddUdpFlow(flow);
        return true;
    }

    private void AddUdpFlow(UdpFlow flow)
    {
        _udpFlows[flow.Key] = flow;
        flow.AgeNode = (flow.IsDns ? _dnsByAge : _udpByAge).AddLast(flow);
        if (flow.IsDns)
        {
            ScheduleDnsSweep();
        }
    }

    /// <summary>A datagram went through <paramref name="flow"/>: a DNS mapping moves to the young end.</summary>
    internal void TouchUdpFlow(UdpFlow flow)
    {
        if (flow.IsDns && flow.AgeNode is { List: { } list } node && node != list.Last)
        {
            list.Remove(node);
            list.AddLast(node);
        }
    }

    private void ScheduleDnsSweep()
    {
        if (_dnsByAge.First is not { } oldest)
        {
            return;
        }

        TimeSpan due = oldest.Value.LastActivity + oldest.Value.IdleTimeout;
        if (_dnsSweepAt is not { } queued || due < queued)
        {
            _dnsSweepAt = due;
            _loop.Schedule(_dnsSweeper ??= new DnsSweeper(this), due);
        }
    }

    /// <summary>Forgets the idle DNS mappings, oldest first, then re-arms for the next one.</summary>
    private sealed class DnsSweeper(NetworkStack stack) : IEventHandler
    {
        public void OnReady(uint events)
        {
        }

        public void OnTimer()
        {
            stack._dnsSweepAt = null;
            TimeSpan now = stack.Now;
            while (stack._dnsByAge.First is { } oldest && now - oldest.Value.LastActivity >= oldest.Value.IdleTimeout)
            {
                stack.RemoveUdpFlow(oldest.Value);
            }

            stack.ScheduleDnsSweep();
        }
    }

    /// <summary>
    /// Evicts what a new mapping needs evicted: the oldest DNS mapping when DNS holds its whole share
    /// (<see cref="StackOptions.MaxDnsFlows"/>), and the oldest mapping of the newcomer's kind (else of
    /// the other kind) when the table is full. False only when nothing can be evicted.
    /// </summary>
    private bool MakeRoomForUdpFlow(bool dns)
    {
        if (dns && _dnsByAge.Count >= _options.MaxDnsFlows && _dnsByAge.First is { } oldestDns)
        {
            Counters.UdpFlowsEvicted++;
            RemoveUdpFlow(oldestDns.Value);
        }

        if (_udpFlows.Count >= _options.MaxUdpFlows)
        {
            var victim = (dns ? _dnsByAge.First : _udpByAge.First) ?? _udpByAge.First ?? _dnsByAge.First;
            if (victim is null)
            {
                return false;
            }

            Counters.UdpFlowsEvicted++;
            RemoveUdpFlow(victim.Value);
        }

        return true;
    }

    internal bool TryGetUdpFlow(FlowKey key, out UdpFlow flow) => _udpFlows.TryGetValue(key, out flow!);

    internal void RemoveUdpFlow(UdpFlow flow)
    {
        if (_udpFlows.TryGetValue(flow.Key, out var current) && ReferenceEquals(current, flow))
        {
            _udpFlows.Remove(flow.Key);
        }

        if (flow.AgeNode is { List: { } list } node)
        {
            list.Remove(node);
            flow.AgeNode = null;
        }

        flow.Dispose();
    }

    private void ForwardEcho(UInt128 src, UInt128 dst, ushort id, ReadOnlySpan<byte> request)
    {
        if (!TryMapOutbound(dst, 0, out var host, out _))
        {
            Counters.IcmpDropped++;
            return;
        }

        var key = new FlowKey(src, id, dst, 0);
        if (!_echoFlows.TryGetValue(key, out var flow))
        {
            flow = IcmpEchoFlow.Open(this, key, host);
            if (flow is null)
            {
                Counters.IcmpDropped++; // no unprivileged ICMP socket here (net.ipv4.ping_group_range)
                return;
            }

            _echoFlows[key] = flow;
        }

        try
        {
            flow.Send(request);
        }
        catch (Exception e) when (!EventLoop.IsFatal(e))
        {
            ContainFault(flow, e);
        }
    }

    internal void RemoveEchoFlow(IcmpEchoFlow flow)
    {
        _echoFlows.Remove(flow.Key);
        flow.Dispose();
    }

    private void CloseUdpFlows()
    {
        foreach (var flow in _udpFlows.Values)
        {
            flow.Dispose();
        }

        _udpFlows.Clear();
        _udpByAge.Clear();
        _dnsByAge.Clear();
        foreach (var flow in _echoFlows.Values)
        {
            flow.Dispose();
        }

        _echoFlows.Clear();
    }
}
