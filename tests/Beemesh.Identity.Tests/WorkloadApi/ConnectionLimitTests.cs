using System.Net.Sockets;
using Beemesh.Identity.WorkloadApi;
using Beemesh.Spiffe.Processes;
using Beemesh.Spiffe.WorkloadApi;
using Beemesh.Spiffe.X509;

namespace Beemesh.Identity.Tests.WorkloadApi;

public sealed class ConnectionLimitTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    [Fact]
    public void LimiterCountsTotalPerProcessAndPerGroup()
    {
        using CallerProcess self = CallerProcess.Open(Environment.ProcessId)!;
        var limiter = new ConnectionLimiter(maxTotal: 3, maxPerProcess: 2);
        IDisposable a = limiter.TryEnter(self, "g", 5, out _)!;
        IDisposable b = limiter.TryEnter(self, "g", 5, out _)!;
        Assert.Null(limiter.TryEnter(self, "g", 5, out string? perProcess));
        Assert.Contains("already has 2 connections open", perProcess, StringComparison.Ordinal);
        Assert.Null(limiter.TryEnter(null, out string? unknown));
        Assert.Contains("could not be identified", unknown, StringComparison.Ordinal);
        a.Dispose();
        a.Dispose(); // idempotent
        Assert.Equal(1, limiter.Open);
        b.Dispose();
        Assert.Equal(0, limiter.Open);
        Assert.Equal((1L, 1L), (limiter.RefusedPerProcess, limiter.RefusedUnidentified));

        var groups = new ConnectionLimiter(maxTotal: 10, maxPerProcess: 10);
        using IDisposable g1 = groups.TryEnter(self, "g", 2, out _)!;
        using IDisposable g2 = groups.TryEnter(self, "g", 2, out _)!;
        Assert.Null(groups.TryEnter(self, "g", 2, out string? group));
        Assert.Contains("g already has 2", group, StringComparison.Ordinal);
        using IDisposable other = groups.TryEnter(self, "h", 2, out _)!;
        Assert.Equal(1, groups.RefusedGroup);

        var small = new ConnectionLimiter(maxTotal: 1, maxPerProcess: 5);
        using IDisposable only = small.TryEnter(self, out _)!;
        Assert.Null(small.TryEnter(self, out string? total));
        Assert.Contains("1 connections are open", total, StringComparison.Ordinal);
        Assert.Equal(1, small.RefusedTotal);
    }

    [Fact]
    public async Task WaitUntilCompletesOnTheChangeThatMakesTheConditionTrue()
    {
        using CallerProcess self = CallerProcess.Open(Environment.ProcessId)!;
        var limiter = new ConnectionLimiter(maxTotal: 1, maxPerProcess: 5);
        using var cancel = new CancellationTokenSource(Guard);
        Task open = limiter.WaitUntilAsync(l => l.Open == 1, cancel.Token);
        Task refused = limiter.WaitUntilAsync(l => l.RefusedTotal == 1, cancel.Token);
        Assert.False(open.IsCompleted);
        IDisposable slot = limiter.TryEnter(self, out _)!;
        await open;
        Assert.False(refused.IsCompleted);
        Assert.Null(limiter.TryEnter(self, out _));
        await refused;
        Task closed = limiter.WaitUntilAsync(l => l.Open == 0, cancel.Token);
        Assert.False(closed.IsCompleted);
        slot.Dispose();
        await closed;
        // A condition that already holds completes at once; one that never does ends with the token.
        await limiter.WaitUntilAsync(l => l.Open == 0, cancel.Token);
        using var never = new CancellationTokenSource();
        Task pending = limiter.WaitUntilAsync(l => l.Open == 7, never.Token);
        never.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
    }

    [Fact]
    public async Task ConnectionsPastThePerProcessLimitAreClosedAtAccept()
    {
        await using var fixture = new WorkloadApiFixture();
        WorkloadApiClient client = await fixture.StartServerAsync("spiffe://example.org/web", configure: o => o.MaxConnectionsPerProcess = 2);
        var held = new List<Socket>();
        for (int i = 0; i < 2; i++)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(client.SocketPath));
            await socket.SendAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());
            held.Add(socket);
        }

        // The two held connections are served (the server's SETTINGS frame arrives) ...
        byte[] buffer = new byte[64];
        foreach (Socket socket in held)
        {
            Assert.True(await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).AsTask().WaitAsync(Guard) > 0);
        }

        // ... the third from the same process is closed at once.
        using (var extra = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await extra.ConnectAsync(new UnixDomainSocketEndPoint(client.SocketPath));
            Assert.Equal(0, await extra.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).AsTask().WaitAsync(Guard));
        }

        Assert.True(fixture.Servers[0].RefusedPerProcessLimit >= 1);
        foreach (Socket socket in held)
        {
            socket.Dispose();
        }

        // Once the server has seen them close (its limiter's change signal), the process is served again.
        using (var closed = new CancellationTokenSource(Guard))
        {
            await fixture.Servers[0].WaitForConnectionCountsAsync(s => s.OpenConnections == 0, closed.Token);
        }

        X509Context context = await client.FetchX509ContextAsync().WaitAsync(Guard);
        Assert.Equal("spiffe://example.org/web", Assert.Single(context.Svids).Id.ToString());
    }

    [Fact]
    public async Task AFloodOfRefusedConnectionsLogsAtPowersOfTwoOnly()
    {
        await using var fixture = new WorkloadApiFixture();
        var log = new CountingLoggerProvider();
        using var factory = new Microsoft.Extensions.Logging.LoggerFactory([log]);
        WorkloadApiClient client = await fixture.StartServerAsync(null, configure: o => o.MaxUnattestedConnections = 0, loggerFactory: factory);

        byte[] buffer = new byte[64];
        const int Attempts = 100;
        for (int i = 0; i < Attempts; i++)
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(client.SocketPath));
            // Closed at accept: the end of the stream arrives, so the refusal has been counted.
            Assert.Equal(0, await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).AsTask().WaitAsync(Guard));
        }

        Assert.Equal(Attempts, fixture.Servers[0].RefusedIdentityLimit); // the pool of callers without an identity is a group
        string[] refusals = log.Messages.Where(m => m.Contains("connection refused", StringComparison.Ordinal)).ToArray();
        // 1, 2, 4, 8, 16, 32, 64: seven lines for a hundred refusals.
        Assert.Equal(7, refusals.Length);
        Assert.Contains(refusals, m => m.Contains("(64 refused so far", StringComparison.Ordinal));
    }

    private sealed class CountingLoggerProvider : Microsoft.Extensions.Logging.ILoggerProvider, Microsoft.Extensions.Logging.ILogger
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _messages = new();

        public IReadOnlyCollection<string> Messages => _messages.ToArray();

        public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => _messages.Enqueue(formatter(state, exception));

        public void Dispose()
        {
        }
    }

    [Fact]
    public async Task AStreamEndsWhenItsCallerLosesItsIdentity()
    {
        await using var fixture = new WorkloadApiFixture();
        WorkloadApiClient client = await fixture.StartServerAsync("spiffe://example.org/web");
        using var cancel = new CancellationTokenSource(Guard);
        await using IAsyncEnumerator<X509Context> stream = client.WatchX509ContextAsync(cancel.Token).GetAsyncEnumerator(cancel.Token);
        Assert.True(await stream.MoveNextAsync());

        fixture.Workloads[0].Unregister(Environment.ProcessId);
        // A bundle change makes the server send the next message, which it must refuse instead.
        fixture.Authority.SetFederatedBundle("other.org", [fixture.Authority.Root]);
        var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await stream.MoveNextAsync());
        Assert.Equal(Grpc.Core.StatusCode.PermissionDenied, refused.StatusCode);
    }
}
