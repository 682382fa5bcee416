using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Stack;

namespace Beemesh.Netstack.Nat;

/// <summary>
/// The lifetime of the host socket a <see cref="TcpFlow"/> is spliced onto: the non-blocking
/// connect, the registration with the event loop, the write shutdown (sent once), the failure
/// mark, and the close (a FIN, or a RST when the flow was reset). Owns the fd: once
/// <see cref="Close"/> ran, <see cref="Fd"/> is -1 and every later call is a no-op.
/// Reading and writing are <see cref="HostReceiveQueue"/>'s and <see cref="HostSendBuffer"/>'s.
/// Loop thread only.
/// </summary>
internal sealed class HostSocket
{
    private EventLoop? _loop;
    private int _token = -1;

    /// <summary>Takes ownership of a connected or connecting stream socket.</summary>
    public HostSocket(int fd) => Fd = fd;

    /// <summary>The fd, or -1 once closed.</summary>
    public int Fd { get; private set; }

    /// <summary>True until <see cref="Close"/>.</summary>
    public bool IsOpen => Fd >= 0;

    /// <summary>True while the event loop watches the socket.</summary>
    public bool IsRegistered => _token >= 0;

    /// <summary>The socket reported an error or a send failed: no more data goes through it.</summary>
    public bool Failed { get; private set; }

    /// <summary>Our write side is shut down (the peer was sent a FIN).</summary>
    public bool WriteShut { get; private set; }

    /// <summary>
    /// Opens a non-blocking socket to <paramref name="host"/>:<paramref name="port"/> (bound to the
    /// stack's outbound address, if any), with Nagle off, and starts connecting; null when the
    /// socket cannot be created or the connect fails at once.
    /// </summary>
    public static unsafe HostSocket? Connect(NetworkStack stack, UInt128 host, ushort port)
    {
        int fd = stack.OpenHostSocket(host, Sys.SOCK_STREAM);
        if (fd < 0)
        {
            return null;
        }

        Sys.SetInt(fd, Sys.IPPROTO_TCP, Sys.TCP_NODELAY, 1);
        if (IpAddr.IsLoopback(host))
        {
            Sys.UnpacedCongestionControl(fd);
        }

        byte* sa = stackalloc byte[IpAddr.SockAddrSize];
        int len = IpAddr.WriteSockAddr(host, port, new Span<byte>(sa, IpAddr.SockAddrSize));
        if (Sys.connect(fd, sa, len) < 0 && Sys.Errno != Sys.EINPROGRESS)
        {
            Sys.close(fd);
            return null;
        }

        return new HostSocket(fd);
    }

    /// <summary>Nagle off, and an unpaced congestion control (accepted sockets of loopback clients or the sidecar; harmless elsewhere).</summary>
    public void PrepareAccepted()
    {
        Sys.SetInt(Fd, Sys.IPPROTO_TCP, Sys.TCP_NODELAY, 1);
        Sys.UnpacedCongestionControl(Fd);
    }

    /// <summary>Asks the loop to report readiness to <paramref name="handler"/>; false when it refused.</summary>
    public bool TryRegister(EventLoop loop, uint events, IEventHandler handler)
    {
        if (Fd < 0 || !loop.TryAdd(Fd, events, handler, out int token))
        {
            return false;
        }

        _loop = loop;
        _token = token;
        return true;
    }

    /// <summary>Like <see cref="TryRegister"/>, throwing when the loop refuses.</summary>
    public void Register(EventLoop loop, uint events, IEventHandler handler)
    {
        _token = loop.Add(Fd, events, handler);
        _loop = loop;
    }

    /// <summary>The pending socket error (SO_ERROR) of a finished connect: 0 when it succeeded.</summary>
    public int TakeError() => Sys.GetInt(Fd, Sys.SOL_SOCKET, Sys.SO_ERROR);

    /// <summary>Marks the socket failed (EPOLLERR, or a send error other than EAGAIN).</summary>
    public void MarkFailed() => Failed = true;

    /// <summary>Sends our FIN (shutdown(SHUT_WR)), once; reading goes on.</summary>
    public void ShutdownWrite()
    {
        if (WriteShut || Fd < 0)
        {
            return;
        }

        WriteShut = true;
        Sys.shutdown(Fd, Sys.SHUT_WR);
    }

    /// <summary>The socket's local address (getsockname), or null.</summary>
    public unsafe System.Net.IPEndPoint? LocalEndPoint()
    {
        if (Fd < 0)
        {
            return null;
        }

        byte* sa = stackalloc byte[IpAddr.SockAddrSize];
        int len = IpAddr.SockAddrSize;
        return Sys.getsockname(Fd, sa, &len) == 0 && IpAddr.ReadSockAddr(new ReadOnlySpan<byte>(sa, len), out var a, out ushort p)
            ? NetworkStack.ToEndPoint(a, p)
            : null;
    }

    /// <summary>Leaves the loop and closes the fd: with a RST (SO_LINGER 0) when <paramref name="reset"/>, else an orderly close.</summary>
    public void Close(bool reset)
    {
        if (Fd < 0)
        {
            return;
        }

        if (_token >= 0)
        {
            _loop!.Remove(Fd, _token);
            _token = -1;
        }

        if (reset)
        {
            Sys.CloseWithReset(Fd);
        }
        else
        {
            Sys.close(Fd);
        }

        Fd = -1;
    }
}
