using System.Net.Sockets;
using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Nat;
using Beemesh.Netstack.Tests.Stack;
using Beemesh.Netstack.Tests.Tcp;

namespace Beemesh.Netstack.Tests.Nat;

public class HostSendBufferTests
{
    /// <summary>Writes <paramref name="data"/> in 64 KiB pieces until the host socket refused some (the hold took it) or all went.</summary>
    private static int WriteUntilHeld(HostSendBuffer buffer, byte[] data)
    {
        int written = 0;
        while (written < data.Length && buffer.PendingLength == 0)
        {
            int n = buffer.Write(data.AsSpan(written, Math.Min(64 << 10, data.Length - written)));
            Assert.True(n > 0);
            written += n;
        }

        return written;
    }

    /// <summary>
    /// Small kernel buffers on both ends, whatever the host's defaults: send() falls short once the
    /// peer's 64 KiB receive buffer is full, and the peer still reads in large pieces.
    /// </summary>
    private static void SmallBuffers(LoopbackSockets loop)
    {
        loop.Peer.ReceiveBufferSize = 64 << 10;
        Assert.Equal(0, Sys.SetInt(loop.Fd, Sys.SOL_SOCKET, Sys.SO_SNDBUF, 4096));
    }

    [Fact]
    public void NothingHeld_TheWindowStaysOpenByTheReserve()
    {
        using var ctx = new StackTestContext();
        using var loop = new LoopbackSockets();
        var socket = new HostSocket(loop.Fd);
        var buffer = new HostSendBuffer(ctx.Stack, socket);
        Assert.InRange(buffer.FreeSpace, HostSendBuffer.HoldReserve, HostSendBuffer.HoldBudget);
        Assert.Equal(5, buffer.Write("hello"u8));
        Assert.Equal(0, buffer.PendingLength);
        Assert.Equal("hello"u8.ToArray(), loop.PeerRead(5));
        socket.Close(reset: false);
    }

    [Fact]
    public void ShortSend_IsHeld_InOrder_ShrinksTheWindow_AndDrainsWhenWritable()
    {
        using var ctx = new StackTestContext();
        using var loop = new LoopbackSockets();
        SmallBuffers(loop);
        var socket = new HostSocket(loop.Fd);
        var buffer = new HostSendBuffer(ctx.Stack, socket);
        byte[] data = TcpTestContext.Bytes(8 << 20, 5);
        int written = WriteUntilHeld(buffer, data);
        Assert.True(buffer.PendingLength > 0, "the peer never filled up");
        Assert.True(ctx.Stack.HoldBytesOut >= buffer.PendingLength); // rented from the stack's pool
        Assert.True(buffer.FreeSpace <= HostSendBuffer.HoldBudget - buffer.PendingLength);

        // Once something is held, every later byte queues behind it, whatever the kernel could take.
        int held = buffer.PendingLength;
        Assert.Equal(1000, buffer.Write(data.AsSpan(written, 1000)));
        written += 1000;
        Assert.Equal(held + 1000, buffer.PendingLength);

        // The peer reads; each EPOLLOUT sends more of the hold until it is empty and given back.
        var received = new MemoryStream();
        var chunk = new byte[256 << 10];
        while (buffer.PendingLength > 0 || received.Length < written)
        {
            int n = loop.Peer.Receive(chunk);
            Assert.True(n > 0);
            received.Write(chunk, 0, n);
            buffer.OnWritable();
        }

        Assert.Equal(data.AsSpan(0, written).ToArray(), received.ToArray());
        Assert.Equal(0, ctx.Stack.HoldBytesOut);
        socket.Close(reset: false);
    }

    [Fact]
    public void TheHold_NeverExceedsItsBound()
    {
        using var ctx = new StackTestContext();
        using var loop = new LoopbackSockets();
        SmallBuffers(loop);
        var socket = new HostSocket(loop.Fd);
        var buffer = new HostSendBuffer(ctx.Stack, socket);
        byte[] data = TcpTestContext.Bytes(16 << 20, 6);
        int written = WriteUntilHeld(buffer, data);
        while (written < data.Length)
        {
            int n = buffer.Write(data.AsSpan(written, Math.Min(1 << 20, data.Length - written)));
            if (n == 0)
            {
                break;
            }

            written += n;
        }

        Assert.Equal(HostSendBuffer.MaxPending, buffer.PendingLength);
        Assert.Equal(0, buffer.Write(data.AsSpan(written, 10))); // refused: the guest must retransmit
        Assert.Equal(0, buffer.FreeSpace); // and the window said so
        buffer.Release();
        Assert.Equal(0, ctx.Stack.HoldBytesOut);
        socket.Close(reset: true);
    }

    [Fact]
    public void Shutdown_WaitsForTheHold_ToDrain()
    {
        using var ctx = new StackTestContext();
        using var loop = new LoopbackSockets();
        SmallBuffers(loop);
        var socket = new HostSocket(loop.Fd);
        var buffer = new HostSendBuffer(ctx.Stack, socket);
        byte[] data = TcpTestContext.Bytes(8 << 20, 7);
        int written = WriteUntilHeld(buffer, data);
        Assert.True(buffer.PendingLength > 0);
        buffer.ShutdownWhenDrained();
        Assert.False(socket.WriteShut); // the held bytes go first

        var received = new MemoryStream();
        var chunk = new byte[256 << 10];
        int n;
        while ((n = loop.Peer.Receive(chunk)) > 0)
        {
            received.Write(chunk, 0, n);
            buffer.OnWritable();
        }

        Assert.True(socket.WriteShut);
        Assert.Equal(data.AsSpan(0, written).ToArray(), received.ToArray()); // everything, then EOF
        socket.Close(reset: false);
    }

    [Fact]
    public void Shutdown_WithNothingHeld_IsImmediate_AndLaterWritesAreRefused()
    {
        using var ctx = new StackTestContext();
        using var loop = new LoopbackSockets();
        var socket = new HostSocket(loop.Fd);
        var buffer = new HostSendBuffer(ctx.Stack, socket);
        buffer.ShutdownWhenDrained();
        Assert.True(socket.WriteShut);
        Assert.Equal(0, loop.Peer.Receive(new byte[16]));
        Assert.Equal(0, buffer.Write(new byte[10]));
        socket.Close(reset: false);
    }

    [Fact]
    public void PeerReset_MarksTheSocketFailed_TakesNothing_WindowZero()
    {
        using var ctx = new StackTestContext();
        using var loop = new LoopbackSockets();
        var socket = new HostSocket(loop.Fd);
        var buffer = new HostSendBuffer(ctx.Stack, socket);
        loop.Peer.LingerState = new LingerOption(true, 0);
        loop.Peer.Close(); // RST
        LoopbackSockets.WaitError(socket.Fd);
        Assert.Equal(0, buffer.Write(new byte[100]));
        Assert.True(socket.Failed);
        Assert.Equal(0, buffer.FreeSpace);
        Assert.Equal(0, buffer.PendingLength);
        socket.Close(reset: true);
    }
}
