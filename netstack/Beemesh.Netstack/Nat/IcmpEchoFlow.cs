using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Nat;

/// <summary>
/// Echo requests from the guest to a remote host, sent through an unprivileged ICMP socket
/// (SOCK_DGRAM, IPPROTO_ICMP[V6]; allowed by net.ipv4.ping_group_range). The kernel replaces
/// the identifier with the socket's own; replies get the guest's identifier back.
/// <see cref="FlowKey.GuestPort"/> holds the guest's identifier. Loop thread only.
/// </summary>
internal sealed class IcmpEchoFlow : IEventHandler, IDisposable
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(30);
    private readonly NetworkStack _stack;
    private int _fd;
    private int _token = -1;
    private TimeSpan _lastActivity;

    private IcmpEchoFlow(NetworkStack stack, FlowKey key, int fd)
    {
        _stack = stack;
        Key = key;
        _fd = fd;
        _lastActivity = stack.Now;
    }

    /// <summary>Guest address and identifier, remote address.</summary>
    public FlowKey Key { get; }

    /// <summary>Opens the ICMP socket; null when the host does not allow unprivileged ICMP sockets.</summary>
    public static unsafe IcmpEchoFlow? Open(NetworkStack stack, FlowKey key, UInt128 host)
    {
        bool v4 = IpAddr.IsV4(host);
        int fd = Sys.socket(v4 ? Sys.AF_INET : Sys.AF_INET6, Sys.SOCK_DGRAM | Sys.SOCK_NONBLOCK | Sys.SOCK_CLOEXEC, v4 ? Sys.IPPROTO_ICMP : Sys.IPPROTO_ICMPV6);
        if (fd < 0)
        {
            return null;
        }

        byte* sa = stackalloc byte[IpAddr.SockAddrSize];
        int len = IpAddr.WriteSockAddr(host, 0, new Span<byte>(sa, IpAddr.SockAddrSize));
        if (Sys.connect(fd, sa, len) < 0)
        {
            Sys.close(fd);
            return null;
        }

        var flow = new IcmpEchoFlow(stack, key, fd);
        flow._token = stack.Loop.Add(fd, Sys.EPOLLIN, flow);
        stack.Loop.Schedule(flow, stack.Now + IdleTimeout);
        return flow;
    }

    /// <summary>Sends the guest's echo request (type, code, checksum, id, seq, data).</summary>
    public unsafe void Send(ReadOnlySpan<byte> request)
    {
        _lastActivity = _stack.Now;
        fixed (byte* p = request)
        {
            if (Sys.send(_fd, p, request.Length, Sys.MSG_DONTWAIT) < 0)
            {
                _stack.Counters.IcmpDropped++;
                return;
            }
        }

        _stack.Counters.IcmpEchoForwarded++;
    }

    /// <inheritdoc />
    public unsafe void OnReady(uint events)
    {
        bool v4 = IpAddr.IsV4(Key.RemoteAddress);
        int l4 = _stack.TransportOffset(Key.GuestAddress);
        var buffer = _stack.TxBuffer;
        while (true)
        {
            nint n;
            fixed (byte* p = buffer.Slice(l4))
            {
                n = Sys.recv(_fd, p, Math.Min(65507, buffer.Length - l4), Sys.MSG_DONTWAIT);
            }

            if (n < Icmpv4Packet.HeaderLength)
            {
                return;
            }

            _lastActivity = _stack.Now;
            int length = (int)n;
            var builder = _stack.StartPacket(Key.RemoteAddress, Key.GuestAddress, v4 ? IpProtocol.Icmp : IpProtocol.Icmpv6, length);
            // The kernel chose the identifier of its ping socket; the guest's echo carried its own.
            int payload = length - Icmpv4Packet.HeaderLength;
            int frameLength;
            if (v4)
            {
                Icmpv4Packet.TryCreate(builder.Transport, out var reply);
                frameLength = builder.WriteIcmpv4(new Icmpv4Repr(reply.Type, reply.Code, Key.GuestPort, reply.SequenceNumber, payload));
            }
            else
            {
                Icmpv6Packet.TryCreate(builder.Transport, out var reply);
                frameLength = builder.WriteIcmpv6(new Icmpv6Repr(reply.Type, reply.Code, ((uint)Key.GuestPort << 16) | reply.SequenceNumber, payload));
            }

            _stack.SendToGuest(Key.GuestAddress, frameLength);
        }
    }

    /// <inheritdoc />
    public void OnTimer()
    {
        if (_fd < 0)
        {
            return;
        }

        if (_stack.Now - _lastActivity >= IdleTimeout)
        {
            _stack.RemoveEchoFlow(this);
            return;
        }

        _stack.Loop.Schedule(this, _lastActivity + IdleTimeout);
    }

    /// <summary>A call into this flow threw: it is forgotten (its socket closed); the next echo request opens a new one.</summary>
    public void Abandon() => _stack.RemoveEchoFlow(this);

    /// <inheritdoc />
    public void Dispose()
    {
        _stack.Loop.Cancel(this);
        if (_fd >= 0)
        {
            _stack.Loop.Remove(_fd, _token);
            Sys.close(_fd);
            _fd = -1;
        }
    }
}
