using System.Buffers.Binary;
using System.Net;
using Beemesh.Netstack.Forwarding;
using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Nat;
using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Stack;

public sealed partial class NetworkStack
{
    private readonly Dictionary<FlowKey, ITcpFlow> _tcpFlows = new();
    private readonly List<ITcpFlow> _dirty = new();
    private int _pendingConnects;

    /// <summary>Live TCP flows (loop thread).</summary>
    internal int TcpFlowCount => _tcpFlows.Count;

    /// <summary>A snapshot of the live TCP flows (loop thread only).</summary>
    internal IEnumerable<ITcpFlow> TcpFlows => _tcpFlows.Values;

    /// <summary>
    /// Connection settings for a new flow: MSS from the MTU, super-segments when the link takes them.
    /// A connection only reads its options, so flows share one instance per address family (rebuilt
    /// if the settings it came from changed): a burst of flows in TIME-WAIT carries no copy each.
    /// </summary>
    internal TcpConnectionOptions CreateTcpOptions(bool v4)
    {
        ref TcpConnectionOptions? cached = ref v4 ? ref _tcpOptions4 : ref _tcpOptions6;
        if (cached is null || !MatchesStackOptions(cached, v4))
        {
            cached = BuildTcpOptions(v4);
        }

        return cached;
    }

    private TcpConnectionOptions? _tcpOptions4;
    private TcpConnectionOptions? _tcpOptions6;

    private bool MatchesStackOptions(TcpConnectionOptions o, bool v4) =>
        o.Mss == _options.Mtu - (v4 ? 40 : 60)
        && o.MaxSegmentPayload == (SegmentationOffload ? 65535 - 60 - 60 : 0)
        && o.KeepAliveIdle == _options.TcpKeepAliveIdle
        && o.KeepAliveInterval == _options.TcpKeepAliveInterval
        && o.KeepAliveProbes == _options.TcpKeepAliveProbes
        && o.CongestionControl == _options.TcpCongestionControl;

    private TcpConnectionOptions BuildTcpOptions(bool v4)
    {
        int mss = _options.Mtu - (v4 ? 40 : 60);
        return new TcpConnectionOptions
        {
            Mss = mss,
            MaxSegmentPayload = SegmentationOffload ? 65535 - 60 - 60 : 0,
            // 2 MiB is 160 Gbit/s at a 100 µs RTT: plenty for a local link, and it bounds what a
            // flow may have to hold when its host socket stalls (see TcpFlow).
            MaxReceiveWindow = 2 << 20,
            // ACK at the end of each batch of frames rather than after up to 40 ms: the batch
            // already coalesces ACKs, and at MTU 65520 a window holds only ~32 segments, so a
            // delayed ACK for a lone segment stalls the sender.
            DelayedAck = TimeSpan.Zero,
            // No SACK: we keep no out-of-order queue, so we could never send a SACK block, and a
            // Linux sender that negotiated SACK waits for SACK blocks (not duplicate ACKs) before
            // it fast-retransmits, falling back to a 200 ms RTO for every hole.
            Sack = false,
            // The link is local: no old duplicate can linger for 2*MSL, so keep TIME-WAIT short
            // instead of holding thousands of flows after a burst of short connections.
            TimeWait = TimeSpan.FromSeconds(5),
            // Half-dead flows (the guest's socket gone without a word) are found by probing.
            KeepAliveIdle = _options.TcpKeepAliveIdle,
            KeepAliveInterval = _options.TcpKeepAliveInterval,
            KeepAliveProbes = _options.TcpKeepAliveProbes,
            CongestionControl = _options.TcpCongestionControl,
        };
    }

    private void HandleTcp(UInt128 src, UInt128 dst, Span<byte> segment, bool checksumTrusted)
    {
        if (!TcpPacket.TryCreate(segment, out var tcp))
        {
            Counters.MalformedFrames++;
            return;
        }

        bool checksumOk = checksumTrusted || (IpAddr.IsV4(src)
            ? tcp.VerifyChecksumV4(IpAddr.ToIpv4Address(src), IpAddr.ToIpv4Address(dst))
            : tcp.VerifyChecksumV6(IpAddr.ToIpv6Address(src), IpAddr.ToIpv6Address(dst)));
        if (!checksumOk)
        {
            Counters.BadChecksums++;
            return;
        }

        if (!tcp.TryReadOptions(out var options))
        {
            Counters.MalformedFrames++;
            return;
        }

        var info = new TcpSegmentInfo
        {
            Seq = tcp.SequenceNumber,
            Ack = tcp.AcknowledgmentNumber,
            Flags = tcp.Flags,
            Window = tcp.Window,
            Options = options,
            PayloadLength = tcp.Payload.Length,
        };
        var key = new FlowKey(src, tcp.SourcePort, dst, tcp.DestinationPort);
        bool syn = (info.Flags & (TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Rst)) == TcpFlags.Syn;
        if (_tcpFlows.TryGetValue(key, out var flow))
        {
            if (syn && flow.IsFinished)
            {
                // RFC 6191-style reuse: a new SYN for a 4-tuple whose old connection is done.
                RemoveTcpFlow(flow);
            }
            else
            {
                try
                {
                    flow.OnSegment(info, tcp.Payload);
                }
                catch (Exception e) when (!EventLoop.IsFatal(e))
                {
                    ContainFault(flow, e);
                }

                return;
            }
        }

        if (syn)
        {
            try
            {
                OpenOutbound(key, info);
            }
            catch (Exception e) when (!EventLoop.IsFatal(e))
            {
                // Sidecar hooks run here too (the acceptor, the redirector). A flow that already
                // exists is reset by its containment; otherwise the SYN is refused.
                if (_tcpFlows.TryGetValue(key, out var opened))
                {
                    ContainFault(opened, e);
                }
                else
                {
                    CountFault($"opening TCP flow {key}", "refused", e);
                    SendReset(key, info);
                }
            }

            return;
        }

        Counters.TcpNoFlow++;
        if ((info.Flags & TcpFlags.Rst) == 0)
        {
            SendReset(key, info);
        }
    }

    private void OpenOutbound(FlowKey key, in TcpSegmentInfo syn)
    {
        if (_tcpFlows.Count >= _options.MaxTcpFlows || _pendingConnects >= _options.MaxPendingConnects)
        {
            Counters.TcpRefusedLimit++;
            SendReset(key, syn);
            return;
        }

        if (FlowAcceptor is { } acceptor && acceptor.Claims(ToEndPoint(key.RemoteAddress, key.RemotePort)))
        {
            AcceptInProcess(acceptor, key, syn);
            return;
        }

        UInt128 hostAddress;
        ushort hostPort;
        IPEndPoint? redirectedFrom = null;
        if (FlowRedirector is { } redirector
            && redirector.TryRedirect(ToEndPoint(key.RemoteAddress, key.RemotePort), out var target))
        {
            redirectedFrom = ToEndPoint(key.RemoteAddress, key.RemotePort);
            hostAddress = IpAddr.From(target.Address);
            hostPort = (ushort)target.Port;
        }
        else if (!TryMapOutbound(key.RemoteAddress, key.RemotePort, out hostAddress, out hostPort))
        {
            Counters.TcpConnectFailures++;
            if (IsStackService(key.RemoteAddress))
            {
                // slirp4netns answers a closed service of its own (the gateway with
                // --disable-host-loopback, the DNS address off port 53) with "network unreachable",
                // which the guest reports as ENETUNREACH rather than ECONNREFUSED.
                Counters.IcmpUnreachableSent++;
                SendNetworkUnreachable(key, syn);
            }
            else
            {
                SendReset(key, syn);
            }

            return;
        }

        var flow = TcpFlow.Connect(this, key, hostAddress, hostPort, syn, redirectedFrom);
        if (flow is null)
        {
            Counters.TcpConnectFailures++;
            SendReset(key, syn);
            return;
        }

        _pendingConnects++;
        _tcpFlows[key] = flow;
    }

    /// <summary>Accepts the guest's SYN on an in-process flow and hands its stream to <paramref name="acceptor"/>.</summary>
    private void AcceptInProcess(IFlowAcceptor acceptor, FlowKey key, in TcpSegmentInfo syn)
    {
        var flow = AttachedTcpFlow.AcceptSyn(this, key, syn);
        _tcpFlows[key] = flow;
        Counters.TcpFlowsOpened++;
        Counters.TcpFlowsInProcess++;
        acceptor.Accept(ToEndPoint(key.RemoteAddress, key.RemotePort), flow.Stream);
    }

    /// <summary>
    /// Where a guest connection to <paramref name="remote"/> goes on the host: the gateway is host
    /// loopback, the DNS address is the upstream resolver (port 53 only), other addresses inside
    /// the virtual network are unreachable, everything else is reached as is.
    /// </summary>
    internal bool TryMapOutbound(UInt128 remote, ushort port, out UInt128 host, out ushort hostPort)
    {
        host = remote;
        hostPort = port;
        bool v4 = IpAddr.IsV4(remote);
        if (remote == (v4 ? Gateway4 : Gateway6))
        {
            host = v4 ? IpAddr.V4Loopback : UInt128.One;
            return !_options.DisableHostLoopback;
        }

        if (remote == (v4 ? Dns4 : Dns6))
        {
            if (_options.DisableDns || port != 53 || _options.DnsUpstream is null)
            {
                return false;
            }

            host = IpAddr.From(_options.DnsUpstream.Address);
            hostPort = (ushort)_options.DnsUpstream.Port;
            return true;
        }

        if (v4)
        {
            uint a = IpAddr.ToV4(remote);
            return !InSubnet4(remote) && a != 0 && a != uint.MaxValue && (a >> 28) != 0xE;
        }

        // IPv6: refuse multicast, link-local and the rest of our own prefix.
        return (byte)(remote >> 120) != 0xFF && (ushort)(remote >> 112) != 0xFE80 && !InPrefix6(remote) && remote != UInt128.Zero;
    }

    /// <summary>The gateway and DNS addresses: the stack's own services, not hosts behind it.</summary>
    private bool IsStackService(UInt128 address) =>
        IpAddr.IsV4(address) ? address == Gateway4 || address == Dns4 : address == Gateway6 || address == Dns6;

    /// <summary>
    /// ICMP destination unreachable, network (RFC 792: type 3 code 0; RFC 4443 §3.1: type 1 code 0,
    /// "no route to destination"), quoting the guest's SYN. The quote is rebuilt from the flow key:
    /// the guest matches the error to its socket only by the inner addresses, protocol, ports and
    /// sequence number (RFC 792 asks for the IP header and the first 64 bits of the datagram).
    /// </summary>
    private void SendNetworkUnreachable(FlowKey key, in TcpSegmentInfo syn)
    {
        bool v4 = IpAddr.IsV4(key.GuestAddress);
        int segmentLength = TcpPacket.MinHeaderLength + syn.PayloadLength;
        int innerHeader = IpHeaderLength(key.GuestAddress);
        const int QuotedTransport = 8; // ports and sequence number
        int quoted = innerHeader + QuotedTransport;
        var builder = StartPacket(key.RemoteAddress, key.GuestAddress, v4 ? IpProtocol.Icmp : IpProtocol.Icmpv6, Icmpv4Packet.HeaderLength + quoted);
        var quote = builder.Transport.Slice(Icmpv4Packet.HeaderLength, quoted);
        quote.Clear();
        if (v4)
        {
            new Ipv4Repr(IpAddr.ToIpv4Address(key.GuestAddress), IpAddr.ToIpv4Address(key.RemoteAddress), IpProtocol.Tcp, segmentLength)
            {
                DontFragment = false,
            }.Emit(quote);
        }
        else
        {
            new Ipv6Repr(IpAddr.ToIpv6Address(key.GuestAddress), IpAddr.ToIpv6Address(key.RemoteAddress), IpProtocol.Tcp, segmentLength).Emit(quote);
        }

        var ports = TcpPacket.CreateUnchecked(quote[innerHeader..]);
        ports.SourcePort = key.GuestPort;
        ports.DestinationPort = key.RemotePort;
        ports.SequenceNumber = syn.Seq;
        int length = v4
            ? builder.WriteIcmpv4(new Icmpv4Repr(Icmpv4Type.DestinationUnreachable, 0, 0, 0, quoted))
            : builder.WriteIcmpv6(new Icmpv6Repr(Icmpv6Type.DestinationUnreachable, 0, 0, quoted));
        SendToGuest(key.GuestAddress, length);
    }

    /// <summary>A host connect finished (either way); the flow stops counting as pending.</summary>
    internal void ConnectFinished(ITcpFlow flow, bool ok)
    {
        _pendingConnects--;
        if (ok)
        {
            Counters.TcpFlowsOpened++;
        }
        else
        {
            Counters.TcpConnectFailures++;
        }
    }

    /// <summary>
    /// Claims outbound flows before the stack's own rules (the sidecar's mesh hook); set it before
    /// <see cref="Run"/>. Called on the loop thread.
    /// </summary>
    public IFlowRedirector? FlowRedirector { get; set; }

    /// <summary>
    /// Opens a TCP connection into the guest that appears to come from
    /// <paramref name="source"/>:<paramref name="sourcePort"/> and splices it onto the connected
    /// stream socket <paramref name="fd"/> (the sidecar's inbound path: the guest sees the caller's
    /// mesh address). Ownership of <paramref name="fd"/> moves to the stack, which closes it when
    /// the flow ends. Safe from any thread; returns false when the flow could not be created.
    /// </summary>
    public bool AttachGuestConnection(int fd, IPAddress source, int sourcePort, int guestPort)
    {
        try
        {
            return InvokeOnLoop(() =>
            {
                bool v4 = source.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;
                var key = new FlowKey(v4 ? Guest4 : Gateway6, (ushort)guestPort, IpAddr.From(source), (ushort)sourcePort);
                if (HasTcpFlow(key))
                {
                    Interop.Sys.CloseWithReset(fd); // the fd is ours either way
                    return false;
                }

                return TcpFlow.Accept(this, key, fd) is not null; // Accept closes the fd when it refuses
            });
        }
        catch (PortForwardException)
        {
            return false; // the loop did not answer
        }
    }

    /// <summary>
    /// Claims outbound flows in process, before <see cref="FlowRedirector"/> and the stack's own
    /// rules: a claimed flow's bytes go to a <see cref="GuestFlowStream"/> with no host socket
    /// (the sidecar's mesh path). Set it before <see cref="Run"/>. Called on the loop thread.
    /// </summary>
    public IFlowAcceptor? FlowAcceptor { get; set; }

    /// <summary>
    /// Opens a TCP connection into the guest that appears to come from
    /// <paramref name="source"/>:<paramref name="sourcePort"/>, as an in-process stream (the
    /// sidecar's inbound path, with no host socket): the stream's writes reach the guest once it
    /// accepted, and a refusal fails its reads and writes as a reset. Safe from any thread;
    /// returns null when the flow could not be created (the 4-tuple is taken, or the flow limit).
    /// </summary>
    public GuestFlowStream? AttachGuestStream(IPAddress source, int sourcePort, int guestPort)
    {
        ArgumentNullException.ThrowIfNull(source);
        try
        {
            return InvokeOnLoop(() =>
            {
                bool v4 = source.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;
                var key = new FlowKey(v4 ? Guest4 : Gateway6, (ushort)guestPort, IpAddr.From(source), (ushort)sourcePort);
                if (HasTcpFlow(key))
                {
                    return null;
                }

                var flow = AttachedTcpFlow.Connect(this, key);
                if (flow is null)
                {
                    return null;
                }

                Counters.TcpFlowsInProcess++;
                return flow.Stream;
            });
        }
        catch (PortForwardException)
        {
            return null; // the loop did not answer
        }
    }

    /// <summary>Adds a flow created by a port-forwarding listener.</summary>
    internal bool TryAddInbound(ITcpFlow flow)
    {
        if (_tcpFlows.Count >= _options.MaxTcpFlows || !_tcpFlows.TryAdd(flow.Key, flow))
        {
            Counters.TcpRefusedLimit++;
            return false;
        }

        Counters.TcpFlowsOpened++;
        return true;
    }

    internal bool HasTcpFlow(FlowKey key) => _tcpFlows.ContainsKey(key);

    internal void RemoveTcpFlow(ITcpFlow flow)
    {
        if (_tcpFlows.TryGetValue(flow.Key, out var current) && ReferenceEquals(current, flow))
        {
            _tcpFlows.Remove(flow.Key);
        }

        flow.Dispose();
    }

    /// <summary>Queues a flow for <see cref="Flush"/> at the end of the current batch.</summary>
    internal void MarkDirty(ITcpFlow flow) => _dirty.Add(flow);

    /// <summary>After each batch: every touched flow sends what it can (data, ACKs, window updates) once.</summary>
    private void Flush()
    {
        for (int i = 0; i < _dirty.Count; i++)
        {
            try
            {
                _dirty[i].Flush();
            }
            catch (Exception e) when (!EventLoop.IsFatal(e))
            {
                ContainFault(_dirty[i], e);
            }
        }

        _dirty.Clear();
        ObserveFlowCount();
    }

    /// <summary>RST for a segment that has no connection (RFC 9293 §3.10.7.1).</summary>
    internal void SendReset(FlowKey key, in TcpSegmentInfo received)
    {
        uint seq = 0;
        uint ack = 0;
        var flags = TcpFlags.Rst;
        if ((received.Flags & TcpFlags.Ack) != 0)
        {
            seq = received.Ack;
        }
        else
        {
            flags |= TcpFlags.Ack;
            ack = received.Seq + (uint)received.PayloadLength
                + ((received.Flags & TcpFlags.Syn) != 0 ? 1u : 0u) + ((received.Flags & TcpFlags.Fin) != 0 ? 1u : 0u);
        }

        var reset = new TcpRepr(key.RemotePort, key.GuestPort, seq, ack, flags, 0, default, 0);
        var builder = StartPacket(key.RemoteAddress, key.GuestAddress, IpProtocol.Tcp, reset.BufferLength);
        SendToGuest(key.GuestAddress, builder.WriteTcp(reset));
    }

    private void CloseAllFlows()
    {
        foreach (var flow in _tcpFlows.Values)
        {
            flow.Dispose();
        }

        _tcpFlows.Clear();
        CloseUdpFlows();
        _portForwards?.CloseAll();
    }

    /// <summary>Opens a non-blocking TCP socket of the family of <paramref name="address"/>, bound to the outbound address if one is set.</summary>
    internal unsafe int OpenHostSocket(UInt128 address, int type)
    {
        bool v4 = IpAddr.IsV4(address);
        int fd = Sys.socket(v4 ? Sys.AF_INET : Sys.AF_INET6, type | Sys.SOCK_NONBLOCK | Sys.SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            return -1;
        }

        var outbound = v4 ? _options.OutboundAddress : _options.OutboundAddress6;
        if (outbound is not null && !IpAddr.IsLoopback(address))
        {
            byte* sa = stackalloc byte[IpAddr.SockAddrSize];
            int len = IpAddr.WriteSockAddr(IpAddr.From(outbound), 0, new Span<byte>(sa, IpAddr.SockAddrSize));
            if (Sys.bind(fd, sa, len) < 0)
            {
                Sys.close(fd);
                return -1;
            }
        }

        return fd;
    }
}
