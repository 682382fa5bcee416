using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Nat;
using Beemesh.Netstack.Tests.Tcp;

namespace Beemesh.Netstack.Tests.Nat;

public class HostReceiveQueueTests
{
    [Fact]
    public void Peek_AtAnyOffset_ThenDiscard_DropsOnlyTheHead()
    {
        using var loop = new LoopbackSockets();
        var socket = new HostSocket(loop.Fd);
        var queue = new HostReceiveQueue(socket);
        queue.EnablePeekOffset();
        byte[] sent = TcpTestContext.Bytes(20_000, 3);
        loop.Peer.Send(sent);
        LoopbackSockets.WaitQueued(socket.Fd, sent.Length);
        Assert.Equal(sent.Length, queue.Available);

        var b = new byte[1000];
        Assert.Equal(1000, queue.Peek(5000, b)); // a jump moves SO_PEEK_OFF
        Assert.Equal(sent[5000..6000], b);
        Assert.Equal(1000, queue.Peek(6000, b)); // continuing where the last peek ended
        Assert.Equal(sent[6000..7000], b);
        Assert.Equal(1000, queue.Peek(0, b)); // and back
        Assert.Equal(sent[..1000], b);
        Assert.Equal(sent.Length, queue.Available); // peeking consumes nothing

        queue.Discard(3000);
        Assert.Equal(sent.Length - 3000, queue.Available);
        Assert.Equal(1000, queue.Peek(0, b));
        Assert.Equal(sent[3000..4000], b);
        Assert.Equal(1000, queue.Peek(1000, b)); // offsets are from the new head
        Assert.Equal(sent[4000..5000], b);

        queue.Discard(sent.Length - 3000);
        Assert.Equal(0, queue.Available);
        Assert.Equal(0, queue.Peek(0, b));
        socket.Close(reset: false);
    }

    [Fact]
    public void WithinOneCall_TheQueuedCountIsKept_AndLoweredByDiscards()
    {
        using var loop = new LoopbackSockets();
        var socket = new HostSocket(loop.Fd);
        var queue = new HostReceiveQueue(socket);
        queue.EnablePeekOffset();
        loop.Peer.Send(new byte[1000]);
        LoopbackSockets.WaitQueued(socket.Fd, 1000);

        queue.BeginCall();
        Assert.Equal(1000, queue.Available);
        loop.Peer.Send(new byte[500]);
        LoopbackSockets.WaitQueued(socket.Fd, 1500);
        Assert.Equal(1000, queue.Available); // the kept answer: no ioctl
        queue.Discard(100);
        Assert.Equal(900, queue.Available);
        queue.EndCall();

        Assert.Equal(1400, queue.Available); // outside a call: the kernel's count
        Assert.Equal(1400, Sys.IoctlInt(socket.Fd, Sys.FIONREAD));
        socket.Close(reset: false);
    }

    [Fact]
    public void ClosedSocket_HasNothing_AndDiscardIsANoOp()
    {
        using var loop = new LoopbackSockets();
        var socket = new HostSocket(loop.Fd);
        var queue = new HostReceiveQueue(socket);
        queue.EnablePeekOffset();
        socket.Close(reset: false);
        Assert.Equal(0, queue.Available);
        Assert.Equal(0, queue.Peek(0, new byte[10]));
        queue.Discard(10);
    }
}
