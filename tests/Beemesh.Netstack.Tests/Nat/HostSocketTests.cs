using System.Net;
using System.Net.Sockets;
using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Nat;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Tests.Stack;

namespace Beemesh.Netstack.Tests.Nat;

public class HostSocketTests
{
    private sealed class NoHandler : IEventHandler
    {
        public void OnReady(uint events)
        {
        }

        public void OnTimer()
        {
        }
    }

    [Fact]
    public void Connect_ReachesTheListener_NoError_LocalEndPointIsThePeersRemote()
    {
        using var ctx = new StackTestContext();
        using var loop = new LoopbackSockets(connect: false);
        var socket = Assert.IsType<HostSocket>(HostSocket.Connect(ctx.Stack, IpAddr.From(IPAddress.Loopback), loop.Port));
        var peer = loop.Accept();
        Assert.Equal(0, socket.TakeError());
        Assert.Equal(peer.RemoteEndPoint, socket.LocalEndPoint());
        socket.Close(reset: false);
    }

    [Fact]
    public void Close_IsAnOrderlyFin_OnceOnly()
    {
        using var loop = new LoopbackSockets();
        var socket = new HostSocket(loop.Fd);
        socket.Close(reset: false);
        Assert.False(socket.IsOpen);
        Assert.Equal(-1, socket.Fd);
        socket.Close(reset: true); // no-op: the fd is gone
        Assert.Equal(0, loop.Peer.Receive(new byte[16])); // EOF, not a reset
        Assert.Null(socket.LocalEndPoint());
    }

    [Fact]
    public void Close_WithReset_ThePeerSeesConnectionReset()
    {
        using var loop = new LoopbackSockets();
        var socket = new HostSocket(loop.Fd);
        socket.Close(reset: true);
        var e = Assert.Throws<SocketException>(() => loop.Peer.Receive(new byte[16]));
        Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
    }

    [Fact]
    public void ShutdownWrite_SendsFinOnce_AndReadingGoesOn()
    {
        using var loop = new LoopbackSockets();
        var socket = new HostSocket(loop.Fd);
        socket.ShutdownWrite();
        socket.ShutdownWrite();
        Assert.True(socket.WriteShut);
        Assert.Equal(0, loop.Peer.Receive(new byte[16]));

        loop.Peer.Send("still here"u8.ToArray());
        var queue = new HostReceiveQueue(socket);
        queue.EnablePeekOffset();
        LoopbackSockets.WaitQueued(socket.Fd, 10);
        var b = new byte[10];
        Assert.Equal(10, queue.Peek(0, b));
        Assert.Equal("still here"u8.ToArray(), b);
        socket.Close(reset: false);
    }

    [Fact]
    public void Register_ThenClose_LeavesTheLoop()
    {
        using var ctx = new StackTestContext();
        using var loop = new LoopbackSockets();
        var socket = new HostSocket(loop.Fd);
        Assert.False(socket.IsRegistered);
        Assert.True(socket.TryRegister(ctx.Stack.Loop, Sys.EPOLLIN, new NoHandler()));
        Assert.True(socket.IsRegistered);
        Assert.False(socket.TryRegister(ctx.Stack.Loop, Sys.EPOLLIN, new NoHandler())); // epoll refuses the same fd twice
        socket.Close(reset: false);
        Assert.False(socket.IsRegistered);
        Assert.False(socket.TryRegister(ctx.Stack.Loop, Sys.EPOLLIN, new NoHandler())); // closed: nothing to register
    }

    [Fact]
    public void MarkFailed_IsSticky()
    {
        using var loop = new LoopbackSockets();
        var socket = new HostSocket(loop.Fd);
        Assert.False(socket.Failed);
        socket.MarkFailed();
        Assert.True(socket.Failed);
        Assert.True(socket.IsOpen); // failing does not close: the flow decides when
        socket.Close(reset: true);
    }
}
