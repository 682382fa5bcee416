using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Beemesh.Sidecar.Identity;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Sidecar.Tests.Identity;

/// <summary><see cref="WorkloadApiRelay"/> over real unix sockets, with a plain echo server standing in for the agent.</summary>
public sealed class WorkloadApiRelayTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>An upstream that echoes every byte back, counting its connections.</summary>
    private sealed class EchoServer : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        private int _accepted;

        public EchoServer(string path)
        {
            _listener.Bind(new UnixDomainSocketEndPoint(path));
            _listener.Listen(64);
            _ = Task.Run(async () =>
            {
                while (true)
                {
                    Socket s;
                    try
                    {
                        s = await _listener.AcceptAsync();
                    }
                    catch (Exception)
                    {
                        return;
                    }

                    Interlocked.Increment(ref _accepted);
                    _ = Task.Run(async () =>
                    {
                        using (s)
                        {
                            var buffer = new byte[4096];
                            try
                            {
                                int n;
                                while ((n = await s.ReceiveAsync(buffer)) > 0)
                                {
                                    await s.SendAsync(buffer.AsMemory(0, n));
                                }

                                s.Shutdown(SocketShutdown.Send);
                            }
                            catch (SocketException)
                            {
                            }
                        }
                    });
                }
            });
        }

        public int Accepted => Volatile.Read(ref _accepted);

        public void Dispose() => _listener.Dispose();
    }

    private static async Task<Socket> ConnectAsync(string path)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(path));
        return s;
    }

    private static async Task<byte[]> ReadToEndAsync(Socket s)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var all = new MemoryStream();
        var buffer = new byte[4096];
        int n;
        while ((n = await s.ReceiveAsync(buffer, SocketFlags.None, cts.Token)) > 0)
        {
            all.Write(buffer, 0, n);
        }

        return all.ToArray();
    }

    [Fact]
    public async Task Relays_bytes_both_ways_and_passes_the_half_close_on()
    {
        using var echo = new EchoServer(_dir.File("upstream.sock"));
        await using var relay = WorkloadApiRelay.Start(_dir.File("relay.sock"), _dir.File("upstream.sock"), _ => true, NullLogger.Instance);

        using Socket client = await ConnectAsync(relay.SocketPath);
        byte[] payload = Encoding.ASCII.GetBytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + new string('x', 50_000));
        await client.SendAsync(payload);
        client.Shutdown(SocketShutdown.Send);

        Assert.Equal(payload, await ReadToEndAsync(client));
        Assert.Equal(1, echo.Accepted);
        Assert.Equal(1, relay.Relayed);
    }

    [Fact]
    public async Task The_socket_is_private_to_our_uid()
    {
        using var echo = new EchoServer(_dir.File("upstream.sock"));
        await using var relay = WorkloadApiRelay.Start(_dir.File("relay.sock"), _dir.File("upstream.sock"), _ => true, NullLogger.Instance);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(relay.SocketPath));
    }

    [Fact]
    public async Task A_process_that_is_not_the_workloads_is_closed_without_reaching_upstream()
    {
        using var echo = new EchoServer(_dir.File("upstream.sock"));
        int seen = 0;
        await using var relay = WorkloadApiRelay.Start(_dir.File("relay.sock"), _dir.File("upstream.sock"), pid =>
        {
            Volatile.Write(ref seen, pid);
            return false;
        }, NullLogger.Instance);

        using Socket client = await ConnectAsync(relay.SocketPath);

        Assert.Empty(await ReadToEndAsync(client));
        Assert.Equal(Environment.ProcessId, Volatile.Read(ref seen)); // SO_PEERCRED of the caller
        Assert.Equal(1, relay.RefusedPeers);
        Assert.Equal(0, echo.Accepted);
    }

    [Fact]
    public async Task A_flood_of_refused_connections_is_logged_at_powers_of_two_only()
    {
        using var echo = new EchoServer(_dir.File("upstream.sock"));
        var log = new CountingLogger();
        await using var relay = WorkloadApiRelay.Start(_dir.File("relay.sock"), _dir.File("upstream.sock"), _ => false, log);
        const int Attempts = 100;
        for (int i = 0; i < Attempts; i++)
        {
            using Socket refused = await ConnectAsync(relay.SocketPath);
            Assert.Empty(await ReadToEndAsync(refused)); // closed at accept, after the count
        }

        Assert.Equal(Attempts, relay.RefusedPeers);
        // 1, 2, 4, 8, 16, 32, 64: seven lines for a hundred refusals.
        Assert.Equal(7, log.Count);
    }

    private sealed class CountingLogger : ILogger
    {
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => Interlocked.Increment(ref _count);
    }

    [Fact]
    public async Task Past_16_connections_the_caller_gets_a_goaway_and_the_others_keep_working()
    {
        using var echo = new EchoServer(_dir.File("upstream.sock"));
        await using var relay = WorkloadApiRelay.Start(_dir.File("relay.sock"), _dir.File("upstream.sock"), _ => true, NullLogger.Instance);
        var open = new List<Socket>();
        try
        {
            for (int i = 0; i < WorkloadApiRelay.MaxConnections; i++)
            {
                Socket s = await ConnectAsync(relay.SocketPath);
                open.Add(s);
                // A round trip proves the connection is relayed (and counted) before the next one.
                await s.SendAsync(new byte[] { (byte)i });
                var one = new byte[1];
                Assert.Equal(1, await s.ReceiveAsync(one));
                Assert.Equal((byte)i, one[0]);
            }

            using Socket extra = await ConnectAsync(relay.SocketPath);
            byte[] reply = await ReadToEndAsync(extra);

            // SETTINGS (empty), then GOAWAY: type 7, stream 0, last stream 0, ENHANCE_YOUR_CALM, debug text.
            Assert.Equal(new byte[] { 0, 0, 0, 4, 0, 0, 0, 0, 0 }, reply[..9]);
            int length = (reply[9] << 16) | (reply[10] << 8) | reply[11];
            Assert.Equal(7, reply[12]);
            Assert.Equal(0u, BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(14)));
            Assert.Equal(0xbu, BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(22)));
            Assert.Equal(WorkloadApiRelay.TooManyConnectionsText, Encoding.UTF8.GetString(reply, 26, length - 8));
            Assert.Equal(18 + length, reply.Length);
            Assert.Equal(1, relay.RefusedOverLimit);

            // The connections already open are still served.
            await open[0].SendAsync(new byte[] { 99 });
            var back = new byte[1];
            Assert.Equal(1, await open[0].ReceiveAsync(back));
            Assert.Equal(99, back[0]);

            // A closed connection frees its place.
            open[1].Dispose();
            open.RemoveAt(1);
            using (var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30))) // keeps a broken build from hanging; measures nothing
            {
                await relay.WaitUntilAsync(r => r.Active < WorkloadApiRelay.MaxConnections, patience.Token);
            }

            using Socket again = await ConnectAsync(relay.SocketPath);
            await again.SendAsync(new byte[] { 7 });
            Assert.Equal(1, await again.ReceiveAsync(back));
            Assert.Equal(7, back[0]);
        }
        finally
        {
            open.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task An_unreachable_agent_gets_the_caller_a_goaway_saying_so()
    {
        await using var relay = WorkloadApiRelay.Start(_dir.File("relay.sock"), _dir.File("missing.sock"), _ => true, NullLogger.Instance);

        using Socket client = await ConnectAsync(relay.SocketPath);
        byte[] reply = await ReadToEndAsync(client);

        Assert.Equal(7, reply[12]);
        Assert.Equal(0x2u, BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(22)));
        Assert.EndsWith(WorkloadApiRelay.UpstreamUnavailableText, Encoding.UTF8.GetString(reply));
    }

    [Fact]
    public async Task Descendants_are_found_by_their_parent_links_and_nothing_else_is()
    {
        using var child = Process.Start(new ProcessStartInfo("sh", ["-c", "sleep 30 & echo $!; wait"]) { RedirectStandardOutput = true })!;
        try
        {
            int grandchild = int.Parse((await child.StandardOutput.ReadLineAsync())!);

            Assert.True(WorkloadApiRelay.IsDescendantOf(child.Id, Environment.ProcessId));
            Assert.True(WorkloadApiRelay.IsDescendantOf(grandchild, Environment.ProcessId));
            Assert.True(WorkloadApiRelay.IsDescendantOf(grandchild, child.Id));
            Assert.False(WorkloadApiRelay.IsDescendantOf(Environment.ProcessId, child.Id));
            Assert.False(WorkloadApiRelay.IsDescendantOf(child.Id, child.Id));
            Assert.False(WorkloadApiRelay.IsDescendantOf(1, Environment.ProcessId));
            Assert.False(WorkloadApiRelay.IsDescendantOf(int.MaxValue, Environment.ProcessId)); // no such process
        }
        finally
        {
            child.Kill(entireProcessTree: true);
        }
    }
}
