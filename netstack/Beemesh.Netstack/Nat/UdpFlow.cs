using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Nat;

/// <summary>
/// One UDP mapping between a guest (address, port) and a remote (address, port). Outbound
/// mappings own a connected host socket; inbound ones (port forwarding) answer through the
/// listener's socket with sendto() to the client. Forgotten after an idle timeout. Loop thread only.
/// </summary>
internal sealed class UdpFlow : IEventHandler, IDisposable
{
    private readonly NetworkStack _stack;
    private readonly TimeSpan _idleTimeout;
    private readonly byte[]? _clientSockAddr;
    private readonly int _clientSockAddrLength;
    private int _fd;
    private int _token = -1;
    private TimeSpan _lastActivity;
    private bool _timerArmed;

    // DNS mappings: a token bucket (StackOptions.DnsQueriesPerSecondPerFlow), refilled by elapsed time.
    private double _dnsTokens = -1;
    private TimeSpan _dnsTokensAt;

    private UdpFlow(NetworkStack stack, FlowKey key, int fd, bool ownsFd, TimeSpan idleTimeout, ReadOnlySpan<byte> clientSockAddr)
    {
        _stack = stack;
        Key = key;
        _fd = fd;
        OwnsFd = ownsFd;
        _idleTimeout = idleTimeout;
        if (!clientSockAddr.IsEmpty)
        {
            _clientSockAddr = clientSockAddr.ToArray();
            _clientSockAddrLength = clientSockAddr.Length;
        }

        _lastActivity = stack.Now;
    }

    /// <summary>The mapping as the guest sees it.</summary>
    public FlowKey Key { get; }

    /// <summary>A mapping to the DNS forwarder (it counts against <see cref="StackOptions.MaxDnsFlows"/>).</summary>
    public bool IsDns { get; init; }

    /// <summary>This flow's place in the stack's age list (least recently active first); owned by the stack.</summary>
    internal LinkedListNode<UdpFlow>? AgeNode { get; set; }

    /// <summary>When a datagram last went either way.</summary>
    internal TimeSpan LastActivity => _lastActivity;

    /// <summary>Idle time after which the mapping is forgotten.</summary>
    internal TimeSpan IdleTimeout => _idleTimeout;

    private bool OwnsFd { get; }

    /// <summary>Opens a connected host socket to (host, port) for guest traffic to <paramref name="key"/>'s remote.</summary>
    public static unsafe UdpFlow? Connect(NetworkStack stack, FlowKey key, UInt128 host, ushort port, TimeSpan idleTimeout, bool dns = false)
    {
        int fd = stack.OpenHostSocket(host, Sys.SOCK_DGRAM);
        if (fd < 0)
        {
            return null;
        }

        byte* sa = stackalloc byte[IpAddr.SockAddrSize];
        int len = IpAddr.WriteSockAddr(host, port, new Span<byte>(sa, IpAddr.SockAddrSize));
        if (Sys.connect(fd, sa, len) < 0)
        {
            Sys.close(fd);
            return null;
        }

        var flow = new UdpFlow(stack, key, fd, ownsFd: true, idleTimeout, default) { IsDns = dns };
        flow._token = stack.Loop.Add(fd, Sys.EPOLLIN, flow);
        flow.ArmTimer(); // after IsDns is set: DNS mappings are expired by the stack's sweeper
        return flow;
    }

    /// <summary>A mapping for a port-forwarding client, answered through the listener socket <paramref name="listenerFd"/>.</summary>
    public static UdpFlow ForClient(NetworkStack stack, FlowKey key, int listenerFd, ReadOnlySpan<byte> clientSockAddr, TimeSpan idleTimeout)
    {
        var flow = new UdpFlow(stack, key, listenerFd, ownsFd: false, idleTimeout, clientSockAddr);
        flow.ArmTimer();
        return flow;
    }

    /// <summary>Sends a guest datagram's payload to the remote side.</summary>
    public unsafe void SendFromGuest(ReadOnlySpan<byte> payload)
    {
        if (IsDns && !TakeDnsToken())
        {
            _stack.Counters.DnsQueriesDropped++;
            return;
        }

        Touch();
        fixed (byte* p = payload)
        {
            nint n;
            if (_clientSockAddr is null)
            {
                n = Sys.send(_fd, p, payload.Length, Sys.MSG_DONTWAIT | Sys.MSG_NOSIGNAL);
            }
            else
            {
                fixed (byte* sa = _clientSockAddr)
                {
                    n = Sys.sendto(_fd, p, payload.Length, Sys.MSG_DONTWAIT | Sys.MSG_NOSIGNAL, sa, _clientSockAddrLength);
                }
            }

            if (n < 0)
            {
                _stack.Counters.UdpSendErrors++;
            }
            else
            {
                _stack.Counters.UdpDatagramsOut++;
            }
        }
    }

    /// <inheritdoc />
    public unsafe void OnReady(uint events)
    {
        var buffer = _stack.TxBuffer;
        int payloadAt = _stack.TransportOffset(Key.GuestAddress) + UdpPacket.HeaderLength;
        for (int i = 0; i < 64; i++)
        {
            nint n;
            fixed (byte* p = buffer.Slice(payloadAt))
            {
                n = Sys.recv(_fd, p, Math.Min(65507, buffer.Length - payloadAt), Sys.MSG_DONTWAIT);
            }

            if (n < 0)
            {
                return; // EAGAIN, or an ICMP error queued on the connected socket: nothing to deliver
            }

            DeliverToGuest((int)n);
        }
    }

    /// <summary>Wraps <paramref name="length"/> payload bytes already in the transmit buffer into a datagram to the guest.</summary>
    public void DeliverToGuest(int length)
    {
        Touch();
        var udp = new UdpRepr(Key.RemotePort, Key.GuestPort, length);
        var builder = _stack.StartPacket(Key.RemoteAddress, Key.GuestAddress, IpProtocol.Udp, udp.BufferLength);
        int frameLength = builder.WriteUdp(udp);
        _stack.Counters.UdpDatagramsIn++;
        _stack.SendToGuest(Key.GuestAddress, frameLength);
    }

    /// <inheritdoc />
    public void OnTimer()
    {
        _timerArmed = false;
        if (_fd < 0)
        {
            return;
        }

        if (_stack.Now - _lastActivity >= _idleTimeout)
        {
            _stack.RemoveUdpFlow(this);
            return;
        }

        ArmTimer();
    }

    private bool TakeDnsToken()
    {
        int rate = _stack.Options.DnsQueriesPerSecondPerFlow;
        TimeSpan now = _stack.Now;
        _dnsTokens = _dnsTokens < 0 ? rate : Math.Min(rate, _dnsTokens + ((now - _dnsTokensAt).TotalSeconds * rate));
        _dnsTokensAt = now;
        if (_dnsTokens < 1)
        {
            return false;
        }

        _dnsTokens--;
        return true;
    }

    private void Touch()
    {
        _lastActivity = _stack.Now;
        _stack.TouchUdpFlow(this);
    }

    private void ArmTimer()
    {
        // DNS mappings come and go by the thousand under a flood: one sweeper in the stack expires
        // them from its activity-ordered list, so an evicted mapping leaves nothing in the timer heap.
        if (IsDns)
        {
            return;
        }

        if (!_timerArmed)
        {
            _timerArmed = true;
            _stack.Loop.Schedule(this, _lastActivity + _idleTimeout);
        }
    }

    /// <summary>A call into this mapping threw: it is forgotten (its socket closed); the next datagram opens a new one.</summary>
    public void Abandon() => _stack.RemoveUdpFlow(this);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_timerArmed)
        {
            _timerArmed = false;
            _stack.Loop.Cancel(this);
        }

        if (_fd < 0)
        {
            return;
        }

        if (OwnsFd)
        {
            if (_token >= 0)
            {
                _stack.Loop.Remove(_fd, _token);
            }

            Sys.close(_fd);
        }

        _fd = -1;
    }
}
