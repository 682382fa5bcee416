using System.Net;
using Beemesh.Sidecar.Tunnel;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Sidecar.Tests.Tunnel;

/// <summary>
/// The caller-side pool's idle timeout and its extra connections when the peer's
/// SETTINGS_MAX_CONCURRENT_STREAMS is reached, and the server's own idle timeout. Idle time runs on
/// a <see cref="FakeTimeProvider"/>: its timers fire inside <see cref="FakeTimeProvider.Advance"/>.
/// </summary>
public sealed class PoolLimitTests
{
    private static readonly TimeSpan Functional = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task IdleConnection_IsClosed_AndTheNextFlowOpensAFreshOne()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        using var dir = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using TestSidecar caller = await StartCallerAsync(mesh, dir, clock);

        await using (TunnelStream first = await caller.Pool.OpenAsync(mesh.Api.Peer, 8080))
        {
            await EchoAsync(first, "one");
        }

        Assert.Equal(1, caller.Pool.OpenConnections);
        clock.Advance(Idle - TimeSpan.FromSeconds(1));
        Assert.Equal(1, caller.Pool.OpenConnections); // not yet
        Assert.Equal(0, caller.Pool.Counters.IdleClosed);

        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(0, caller.Pool.OpenConnections);
        Assert.Equal(1, caller.Pool.Counters.IdleClosed);

        await using (TunnelStream second = await caller.Pool.OpenAsync(mesh.Api.Peer, 8080))
        {
            await EchoAsync(second, "two");
        }

        Assert.Equal(2, caller.Pool.ConnectionsOpened);
        Assert.Equal(1, caller.Pool.OpenConnections);
        Assert.Equal(1, caller.Pool.GenerationsStarted); // same SVID: a new connection, not a new generation
    }

    [Fact]
    public async Task FlowOpenAcrossTheIdleLimit_KeepsItsConnection()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        using var dir = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using TestSidecar caller = await StartCallerAsync(mesh, dir, clock);

        TunnelStream open = await caller.Pool.OpenAsync(mesh.Api.Peer, 8080);
        await EchoAsync(open, "before");
        clock.Advance(Idle * 3);
        Assert.Equal(1, caller.Pool.OpenConnections);
        Assert.Equal(0, caller.Pool.Counters.IdleClosed);
        await EchoAsync(open, "after");

        // A flow that comes and goes on it meanwhile restarts nothing: the open one still holds it.
        await using (TunnelStream other = await caller.Pool.OpenAsync(mesh.Api.Peer, 8081))
        {
            await EchoAsync(other, "other");
        }

        clock.Advance(Idle * 2);
        Assert.Equal(1, caller.Pool.ConnectionsOpened);
        Assert.Equal(1, caller.Pool.OpenConnections);

        // The idle period starts when the last flow ends.
        await open.DisposeAsync();
        clock.Advance(Idle - TimeSpan.FromSeconds(1));
        Assert.Equal(1, caller.Pool.OpenConnections);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0, caller.Pool.OpenConnections);
        Assert.Equal(1, caller.Pool.Counters.IdleClosed);
    }

    [Fact]
    public async Task AtThePeersStreamLimit_NewFlowsOpenMoreConnections_WhichCloseWhenIdle()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        using var dir = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using TestSidecar limited = await TestSidecar.StartAsync(
            mesh.Authority, dir.File("limited.sock"), "/ns/default/sa/limited", IPAddress.Parse("10.200.0.20"), mesh.Directory, maxStreamsPerConnection: 2);
        await using TestSidecar caller = await StartCallerAsync(mesh, dir, clock);

        // Five at once: the first connection takes two, the pool opens a second and a third.
        TunnelStream[] flows = await Task.WhenAll(Enumerable.Range(0, 5).Select(i => caller.Pool.OpenAsync(limited.Peer, 9000 + i))).WaitAsync(Functional);
        try
        {
            await Task.WhenAll(flows.Select((flow, i) => EchoAsync(flow, $"flow {i}"))).WaitAsync(Functional);
            Assert.Equal(3, caller.Pool.ConnectionsOpened);
            Assert.Equal(3, caller.Pool.OpenConnections);
            Assert.Equal(2, caller.Pool.Counters.StreamLimitConnections);
            Assert.Equal(3, caller.Pool.Counters.TunnelConnections["tcp"]);
        }
        finally
        {
            foreach (TunnelStream flow in flows)
            {
                await flow.DisposeAsync();
            }
        }

        clock.Advance(Idle);
        Assert.Equal(0, caller.Pool.OpenConnections);
        Assert.Equal(3, caller.Pool.Counters.IdleClosed);

        // Drained: the next flow needs one connection again.
        await using (TunnelStream again = await caller.Pool.OpenAsync(limited.Peer, 9000))
        {
            await EchoAsync(again, "again");
        }

        Assert.Equal(4, caller.Pool.ConnectionsOpened);
        Assert.Equal(1, caller.Pool.OpenConnections);
        Assert.Equal(2, caller.Pool.Counters.StreamLimitConnections);
    }

    [Fact]
    public async Task PastTheConnectionBound_FlowsWait_AndOneMoreThanTheQueueFails()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        using var dir = new TempDirectory();
        await using TestSidecar limited = await TestSidecar.StartAsync(
            mesh.Authority, dir.File("limited.sock"), "/ns/default/sa/limited", IPAddress.Parse("10.200.0.20"), mesh.Directory, maxStreamsPerConnection: 2);
        await using TestSidecar caller = await TestSidecar.StartAsync(
            mesh.Authority, dir.File("caller.sock"), "/ns/default/sa/caller", IPAddress.Parse("10.200.0.21"), mesh.Directory,
            poolOptions: new TunnelClientPoolOptions { MaxConnectionsPerDestination = 1, MaxWaitingFlows = 1 });

        TunnelStream first = await caller.Pool.OpenAsync(limited.Peer, 9000);
        await using TunnelStream second = await caller.Pool.OpenAsync(limited.Peer, 9001);

        // The connection is full and may not be joined by another: the third waits in the queue...
        Task<TunnelStream> waiting = caller.Pool.OpenAsync(limited.Peer, 9002);
        Assert.False(waiting.IsCompleted);

        // ...and the fourth finds the queue full.
        HttpRequestException full = await Assert.ThrowsAsync<HttpRequestException>(() => caller.Pool.OpenAsync(limited.Peer, 9003));
        Assert.Contains("full", full.Message, StringComparison.Ordinal);

        // A flow ends: the waiting one gets its stream on the same connection.
        await first.DisposeAsync();
        await using TunnelStream third = await waiting.WaitAsync(Functional);
        await EchoAsync(third, "third");
        await EchoAsync(second, "second");
        Assert.Equal(1, caller.Pool.ConnectionsOpened);
        Assert.Equal(0, caller.Pool.Counters.StreamLimitConnections);
    }

    [Fact]
    public async Task Server_ClosesACallersConnectionIdleForItsOwnLimit()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        using var dir = new TempDirectory();
        var serverClock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        TimeSpan serverIdle = TimeSpan.FromMinutes(5);
        await using TestSidecar server = await TestSidecar.StartAsync(
            mesh.Authority, dir.File("server.sock"), "/ns/default/sa/server", IPAddress.Parse("10.200.0.22"), mesh.Directory,
            serverIdleTimeout: serverIdle, serverTime: serverClock);
        // A caller that never closes idle connections itself (like one that vanished).
        await using TestSidecar caller = await TestSidecar.StartAsync(
            mesh.Authority, dir.File("caller.sock"), "/ns/default/sa/caller", IPAddress.Parse("10.200.0.21"), mesh.Directory,
            poolOptions: new TunnelClientPoolOptions { IdleTimeout = null });

        await using (TunnelStream flow = await caller.Pool.OpenAsync(server.Peer, 8080))
        {
            await EchoAsync(flow, "hello");
            // Open flows keep the connection whatever the time.
            serverClock.Advance(serverIdle * 2);
            await EchoAsync(flow, "still");
            Assert.Equal(0, server.Server.Connections.Counters.IdleClosed);

            // A clean end both ways: the server forgets the stream when it sends its END_STREAM,
            // before our read sees the end, so its idle period has started once the read returns.
            await ((TunnelStream)flow).ShutdownWriteAsync();
            using var cancel = new CancellationTokenSource(Functional);
            Assert.Equal(0, await flow.ReadAsync(new byte[1], cancel.Token));
        }

        serverClock.Advance(serverIdle - TimeSpan.FromSeconds(1));
        Assert.Equal(0, server.Server.Connections.Counters.IdleClosed);
        serverClock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, server.Server.Connections.Counters.IdleClosed);

        // The caller learns of it from the GOAWAY: its next flow goes on a new connection.
        await using (TunnelStream next = await caller.Pool.OpenAsync(server.Peer, 8080))
        {
            await EchoAsync(next, "next");
        }

        Assert.Equal(2, caller.Pool.ConnectionsOpened);
    }

    private static Task<TestSidecar> StartCallerAsync(MeshFixture mesh, TempDirectory dir, TimeProvider clock) =>
        TestSidecar.StartAsync(
            mesh.Authority, dir.File("caller.sock"), "/ns/default/sa/caller", IPAddress.Parse("10.200.0.21"), mesh.Directory,
            poolOptions: new TunnelClientPoolOptions { IdleTimeout = Idle, TimeProvider = clock });

    private static async Task EchoAsync(Stream flow, string text)
    {
        byte[] sent = System.Text.Encoding.ASCII.GetBytes(text);
        await flow.WriteAsync(sent);
        await flow.FlushAsync();
        using var cancel = new CancellationTokenSource(Functional);
        byte[] received = new byte[sent.Length];
        await flow.ReadExactlyAsync(received, cancel.Token);
        Assert.Equal(text, System.Text.Encoding.ASCII.GetString(received));
    }
}
