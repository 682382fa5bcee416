using System.Buffers.Binary;
using System.Net.Sockets;
using Beemesh.Netstack.Forwarding;
using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Wire;
using Microsoft.Extensions.Logging;

namespace Beemesh.Netstack.Nat;

/// <summary>
/// The host-side socket of one port-forwarding rule. TCP: each accepted connection becomes a
/// <see cref="TcpFlow"/> that opens a connection into the guest from the client's own address
/// (slirp4netns shows every client as 10.0.2.2; keeping the real source is deliberate). Clients
/// on host loopback, or of the other address family, appear as the gateway. UDP: each client
/// (address, port) becomes a <see cref="UdpFlow"/> answered through this socket. Loop thread only.
/// </summary>
internal sealed class PortForwardListener : IEventHandler, IDisposable
{
    private readonly NetworkStack _stack;
    private readonly UInt128 _guest;
    private int _fd;
    private int _token = -1;
    private ushort _nextAlternatePort = 49152;

    private PortForwardListener(NetworkStack stack, PortForwardRule rule, int fd)
    {
        _stack = stack;
        Rule = rule;
        _fd = fd;
        _guest = IpAddr.From(rule.GuestAddress);
    }

    /// <summary>The rule this listener serves.</summary>
    public PortForwardRule Rule { get; }

    /// <summary>Binds and listens; throws <see cref="PortForwardException"/> with the reason when it cannot.</summary>
    public static unsafe PortForwardListener Open(NetworkStack stack, PortForwardRule rule)
    {
        if (rule.HostPort is < 0 or > 65535 || rule.GuestPort is < 1 or > 65535)
        {
            throw new PortForwardException("port out of range");
        }

        bool tcp = rule.Protocol == ForwardProtocol.Tcp;
        var host = IpAddr.From(rule.HostAddress);
        bool v6 = rule.HostAddress.AddressFamily == AddressFamily.InterNetworkV6;
        int fd = Sys.socket(v6 ? Sys.AF_INET6 : Sys.AF_INET, (tcp ? Sys.SOCK_STREAM : Sys.SOCK_DGRAM) | Sys.SOCK_NONBLOCK | Sys.SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            throw new PortForwardException($"socket: errno {Sys.Errno}");
        }

        if (tcp)
        {
            // A listener may rebind while old connections linger in TIME-WAIT. Never for UDP: there
            // SO_REUSEADDR lets a second socket bind the very same address and port (socket(7)), so a
            // duplicate forward would be accepted, where slirp4netns refuses it.
            Sys.SetInt(fd, Sys.SOL_SOCKET, Sys.SO_REUSEADDR, 1);
        }

        if (v6)
        {
            Sys.SetInt(fd, Sys.IPPROTO_IPV6, Sys.IPV6_V6ONLY, 1);
        }

        byte* sa = stackalloc byte[IpAddr.SockAddrSize];
        var span = new Span<byte>(sa, IpAddr.SockAddrSize);
        int len = IpAddr.WriteSockAddr(host, (ushort)rule.HostPort, span, ipv6: v6);
        if (Sys.bind(fd, sa, len) < 0 || (tcp && Sys.listen(fd, 1024) < 0))
        {
            int errno = Sys.Errno;
            Sys.close(fd);
            throw new PortForwardException(errno == Sys.EADDRINUSE ? "address already in use" : $"bind: errno {errno}");
        }

        var listener = new PortForwardListener(stack, rule, fd);
        listener._token = stack.Loop.Add(fd, Sys.EPOLLIN, listener);
        return listener;
    }

    /// <inheritdoc />
    public void OnReady(uint events)
    {
        if (Rule.Protocol == ForwardProtocol.Tcp)
        {
            AcceptAll();
        }
        else
        {
            ReceiveAll();
        }
    }

    private unsafe void AcceptAll()
    {
        byte* sa = stackalloc byte[IpAddr.SockAddrSize];
        for (int i = 0; i < 64; i++)
        {
            int len = IpAddr.SockAddrSize;
            int fd = Sys.accept4(_fd, sa, &len, Sys.SOCK_NONBLOCK | Sys.SOCK_CLOEXEC);
            if (fd < 0)
            {
                return;
            }

            if (!IpAddr.ReadSockAddr(new ReadOnlySpan<byte>(sa, len), out var client, out ushort clientPort))
            {
                Sys.close(fd);
                continue;
            }

            var key = GuestKey(client, clientPort, tcp: true);
            var flow = TcpFlow.Accept(_stack, key, fd); // contains its own faults: null then too
            if (flow is null)
            {
                _stack.Logger.LogWarning("port forward {Id}: refused a connection from {Client}", Rule.Id, IpAddr.Format(client));
            }
        }
    }

    private unsafe void ReceiveAll()
    {
        var buffer = _stack.TxBuffer;
        int payloadAt = _stack.TransportOffset(_guest) + UdpPacket.HeaderLength;
        byte* sa = stackalloc byte[IpAddr.SockAddrSize];
        for (int i = 0; i < 64; i++)
        {
            int len = IpAddr.SockAddrSize;
            nint n;
            fixed (byte* p = buffer.Slice(payloadAt))
            {
                n = Sys.recvfrom(_fd, p, Math.Min(65507, buffer.Length - payloadAt), Sys.MSG_DONTWAIT, sa, &len);
            }

            if (n < 0)
            {
                return;
            }

            var clientAddr = new ReadOnlySpan<byte>(sa, len);
            if (!IpAddr.ReadSockAddr(clientAddr, out var client, out ushort clientPort))
            {
                continue;
            }

            var key = GuestKey(client, clientPort, tcp: false);
            if (!_stack.TryGetUdpFlow(key, out var flow))
            {
                flow = UdpFlow.ForClient(_stack, key, _fd, clientAddr, _stack.Options.UdpTimeout);
                if (!_stack.TryAddUdpFlow(flow))
                {
                    flow.Dispose();
                    _stack.Counters.UdpSendErrors++;
                    continue;
                }
            }

            try
            {
                flow.DeliverToGuest((int)n);
            }
            catch (Exception e) when (!EventLoop.IsFatal(e))
            {
                _stack.ContainFault(flow, e); // that client's mapping goes; the listener keeps serving
            }
        }
    }

    /// <inheritdoc />
    public void OnTimer()
    {
    }

    /// <summary>The flow key the guest sees for a client: its real address when it can be kept, else the gateway.</summary>
    private FlowKey GuestKey(UInt128 client, ushort clientPort, bool tcp)
    {
        bool guestV4 = IpAddr.IsV4(_guest);
        var source = client;
        if (IpAddr.IsLoopback(client) || IpAddr.IsV4(client) != guestV4)
        {
            source = guestV4 ? _stack.Gateway4 : _stack.Gateway6;
        }

        var key = new FlowKey(_guest, (ushort)Rule.GuestPort, source, clientPort);
        if (!tcp || !_stack.HasTcpFlow(key))
        {
            return key;
        }

        // Two clients folded onto the gateway address with the same port: pick a free one.
        for (int i = 0; i < 16384; i++)
        {
            ushort port = _nextAlternatePort;
            _nextAlternatePort = (ushort)(_nextAlternatePort == 65535 ? 49152 : _nextAlternatePort + 1);
            key = key with { RemotePort = port };
            if (!_stack.HasTcpFlow(key))
            {
                break;
            }
        }

        return key;
    }

    /// <summary>
    /// The listener itself threw (its clients' faults are contained per flow): the rule is removed and
    /// its socket closed, so it is no longer listed as served; flows it opened keep running.
    /// </summary>
    public void Abandon()
    {
        if (!_stack.PortForwards.Remove(Rule.Id))
        {
            Dispose();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_fd >= 0)
        {
            _stack.Loop.Remove(_fd, _token);
            Sys.close(_fd);
            _fd = -1;
        }
    }
}
