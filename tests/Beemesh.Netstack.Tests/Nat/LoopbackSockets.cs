using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Beemesh.Netstack.Interop;

namespace Beemesh.Netstack.Tests.Nat;

/// <summary>
/// A TCP connection on 127.0.0.1: our end is a raw fd (as the stack's host sockets are), the
/// peer a .NET socket the test reads and writes. Waits block on readiness (poll), never on time.
/// </summary>
internal sealed unsafe partial class LoopbackSockets : IDisposable
{
    private const short POLLIN = 0x001;
    private const short POLLERR = 0x008;
    private const short POLLHUP = 0x010;

    private readonly Socket _listener;

    public LoopbackSockets(bool connect = true)
    {
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(4);
        Port = (ushort)((IPEndPoint)_listener.LocalEndPoint!).Port;
        if (connect)
        {
            Fd = Sys.socket(Sys.AF_INET, Sys.SOCK_STREAM | Sys.SOCK_NONBLOCK | Sys.SOCK_CLOEXEC, 0);
            Assert.True(Fd >= 0);
            byte* sa = stackalloc byte[Beemesh.Netstack.Stack.IpAddr.SockAddrSize];
            int len = Beemesh.Netstack.Stack.IpAddr.WriteSockAddr(Beemesh.Netstack.Stack.IpAddr.From(IPAddress.Loopback), Port, new Span<byte>(sa, Beemesh.Netstack.Stack.IpAddr.SockAddrSize));
            int rc = Sys.connect(Fd, sa, len);
            Assert.True(rc == 0 || Sys.Errno == Sys.EINPROGRESS);
            Accept(); // the accept queue has the connection only once the handshake completed
        }
    }

    public ushort Port { get; }

    /// <summary>Our end (non-blocking), -1 when the caller connects by itself.</summary>
    public int Fd { get; } = -1;

    public Socket Peer { get; private set; } = null!;

    public Socket Accept()
    {
        Peer = _listener.Accept();
        return Peer;
    }

    /// <summary>Blocks until at least <paramref name="count"/> bytes are queued on <paramref name="fd"/>.</summary>
    public static void WaitQueued(int fd, int count)
    {
        while (Sys.IoctlInt(fd, Sys.FIONREAD) < count)
        {
            Wait(fd, POLLIN);
        }
    }

    /// <summary>Blocks until <paramref name="fd"/> reports an error or hang-up (the peer's RST arrived).</summary>
    public static void WaitError(int fd)
    {
        while ((Wait(fd, POLLERR | POLLHUP) & (POLLERR | POLLHUP)) == 0)
        {
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes from the peer (blocking).</summary>
    public byte[] PeerRead(int count)
    {
        var b = new byte[count];
        int got = 0;
        while (got < count)
        {
            int n = Peer.Receive(b, got, count - got, SocketFlags.None);
            Assert.True(n > 0, $"EOF after {got} of {count} bytes");
            got += n;
        }

        return b;
    }

    private static short Wait(int fd, short events)
    {
        var p = new PollFd { Fd = fd, Events = events };
        int rc = poll(&p, 1, -1);
        Assert.True(rc >= 0, $"poll failed: errno {Marshal.GetLastPInvokeError()}");
        return p.Revents;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll(PollFd* fds, nuint count, int timeout);

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    public void Dispose()
    {
        Peer?.Dispose();
        _listener.Dispose();
    }
}
