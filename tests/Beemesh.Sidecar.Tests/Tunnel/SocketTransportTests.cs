using System.Net.Sockets;
using Beemesh.Sidecar.Tests.Tunnel.Http2;
using Beemesh.Sidecar.Tunnel;
using Beemesh.Sidecar.Tunnel.Http2;

namespace Beemesh.Sidecar.Tests.Tunnel;

/// <summary>
/// The tunnel socket in direct mode over real loopback sockets: blocking reads on the reader's
/// thread, writes that never block the writer (the kernel's leftovers go out from the drain
/// thread), and a dispose that wakes a blocked reader.
/// </summary>
public sealed class SocketTransportTests
{
    // A hang bound only: every wait below ends on an event, this only turns a hang into a failure.
    private static readonly TimeSpan Functional = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Bytes_pass_both_ways_after_the_switch_to_direct_mode()
    {
        (Socket a, Socket b) = await Http2ConnectionTests.SocketPairAsync();
        using var left = new SocketTransport(a);
        using var right = new SocketTransport(b);

        // Before the switch: the runtime's asynchronous path (the handshake's).
        await left.WriteAsync("hello"u8.ToArray());
        Assert.Equal("hello", await ReadExactlyAsync(right, 5));

        Assert.True(left.EnterDirectMode());
        Assert.True(right.EnterDirectMode());
        Assert.True(left.IsDirect);
        await left.WriteAsync("world"u8.ToArray());
        right.Write("back"u8);
        Assert.Equal("world", await ReadExactlyAsync(right, 5));
        Assert.Equal("back", await ReadExactlyAsync(left, 4));
    }

    [Fact]
    public async Task A_write_larger_than_the_kernel_takes_returns_at_once_and_completes_when_the_peer_reads()
    {
        (Socket a, Socket b) = await Http2ConnectionTests.SocketPairAsync();
        a.SendBufferSize = 64 * 1024;
        b.ReceiveBufferSize = 64 * 1024;
        using var writer = new SocketTransport(a);
        using var reader = new SocketTransport(b);
        Assert.True(writer.EnterDirectMode());
        Assert.True(reader.EnterDirectMode());

        // Far more than both socket buffers hold: the kernel cannot take it while nobody reads.
        byte[] payload = new byte[32 << 20];
        new Random(3).NextBytes(payload);
        ValueTask write = writer.WriteAsync(payload);
        Assert.False(write.IsCompleted);
        Assert.Equal(1, writer.DeferredWrites);

        byte[] received = new byte[payload.Length];
        Task drain = Task.Run(() => reader.ReadExactly(received));
        await write.AsTask().WaitAsync(Functional);
        await drain.WaitAsync(Functional);
        Assert.Equal(payload, received);
    }

    [Fact]
    public async Task Disposing_wakes_a_reader_blocked_in_the_kernel()
    {
        (Socket a, Socket b) = await Http2ConnectionTests.SocketPairAsync();
        using var peer = new SocketTransport(b);
        var transport = new SocketTransport(a);
        Assert.True(transport.EnterDirectMode());
        var entered = new TaskCompletionSource();
        var outcome = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            entered.SetResult();
            try
            {
                int n = transport.Read(new byte[16]);
                outcome.SetResult(n == 0 ? null : new InvalidOperationException($"read {n} bytes"));
            }
            catch (Exception e)
            {
                outcome.SetResult(e is IOException or ObjectDisposedException ? null : e);
            }
        }) { IsBackground = true };
        thread.Start();
        await entered.Task;
        transport.Dispose();
        Assert.Null(await outcome.Task.WaitAsync(Functional));
        // The peer sees the connection end.
        Assert.Equal(0, await peer.ReadAsync(new byte[16]).AsTask().WaitAsync(Functional));
    }

    [Fact]
    public async Task Closing_the_socket_under_the_transport_wakes_a_reader_blocked_in_the_kernel()
    {
        (Socket a, Socket b) = await Http2ConnectionTests.SocketPairAsync();
        using var peer = new SocketTransport(b);
        using var transport = new SocketTransport(a);
        Assert.True(transport.EnterDirectMode());
        var outcome = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var tid = new TaskCompletionSource<int>();
        var thread = new Thread(() =>
        {
            tid.SetResult(GetTid());
            try
            {
                int n = transport.Read(new byte[16]);
                outcome.SetResult(n == 0 ? null : new InvalidOperationException($"read {n} bytes"));
            }
            catch (Exception e)
            {
                outcome.SetResult(e is IOException or ObjectDisposedException ? null : e);
            }
        }) { IsBackground = true };
        thread.Start();
        await WaitUntilInRecvAsync(tid.Task);

        // As an abortive close of the socket itself does (the transport is not told).
        Task close = Task.Run(() => a.Close(0));
        await close.WaitAsync(Functional);
        Assert.Null(await outcome.Task.WaitAsync(Functional));
        // The peer sees the connection end (a reset, or the end of the stream).
        Exception? seen = await Record.ExceptionAsync(async () => Assert.Equal(0, await peer.ReadAsync(new byte[16]).AsTask().WaitAsync(Functional)));
        Assert.True(seen is null or IOException, seen?.ToString());
    }

    /// <summary>Waits until the thread whose kernel id <paramref name="tid"/> is blocked in recvfrom(2) (x86-64 syscall 45).</summary>
    private static async Task WaitUntilInRecvAsync(Task<int> tid)
    {
        string path = $"/proc/self/task/{await tid.WaitAsync(Functional)}/syscall";
        using var cancel = new CancellationTokenSource(Functional);
        while (!(File.ReadAllText(path).Split(' ')[0] == "45"))
        {
            await Task.Delay(10, cancel.Token);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "gettid")]
    private static extern int GetTid();

    [Fact]
    public async Task A_connection_with_a_read_thread_dispatches_frames_on_it()
    {
        (Socket c, Socket s) = await Http2ConnectionTests.SocketPairAsync();
        var serverTransport = new SocketTransport(s);
        var clientTransport = new SocketTransport(c);
        Assert.True(serverTransport.EnterDirectMode());
        Assert.True(clientTransport.EnterDirectMode());
        var handlerThread = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using Http2Connection server = Http2Connection.StartServer(serverTransport, async stream =>
        {
            // A new stream's handler starts where its HEADERS were parsed: on the read loop.
            handlerThread.TrySetResult(Thread.CurrentThread.Name);
            await stream.RespondAsync(200);
            stream.Dispose();
        }, new Http2ConnectionOptions { ReadThread = true });
        await using Http2Connection client = Http2Connection.StartClient(clientTransport, new Http2ConnectionOptions { ReadThread = true });
        using Http2Stream stream = await client.ConnectAsync("10.0.0.2:80").WaitAsync(Functional);
        Assert.Equal(200, stream.Status);
        Assert.Equal("tunnel-read", await handlerThread.Task.WaitAsync(Functional));
    }

    private static async Task<string> ReadExactlyAsync(Stream stream, int count)
    {
        byte[] buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(Functional);
        return System.Text.Encoding.ASCII.GetString(buffer);
    }
}
