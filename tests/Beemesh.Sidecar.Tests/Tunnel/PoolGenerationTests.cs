using System.Diagnostics;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Sidecar.Tunnel;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Sidecar.Tests.Tunnel;

/// <summary>The caller-side pool across SVID rotations, and the mesh counters of a real flow.</summary>
public sealed class PoolGenerationTests
{
    private static readonly TimeSpan Functional = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Flow_IsCountedOnBothSides()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();

        await using (TunnelStream tunnel = await mesh.Web.Pool.OpenAsync(mesh.Api.Peer, 8080))
        {
            await tunnel.WriteAsync("count me"u8.ToArray());
            await tunnel.FlushAsync();
            Assert.Equal("count me", await ReadExactlyAsync(tunnel, 8));
        }

        var server = mesh.Api.Server.Connections.Counters;
        var client = mesh.Web.Pool.Counters;
        Assert.True(await WaitUntilAsync(() => server.BytesFromWorkload >= 8));
        Assert.Equal(1, server.ServerHandshakes.Count);
        Assert.Equal(0, server.ServerHandshakes.Failures);
        Assert.Equal(1, client.ClientHandshakes.Count);
        Assert.True(client.ClientHandshakes.SumSeconds > 0);
        Assert.Equal(1, server.Allowed[Beemesh.Sidecar.Inbound.LiveConnectionRegistry.TriggerConnect]);
        Assert.Equal(1, server.ConnectionsOpened);
        Assert.Equal(8, server.BytesToWorkload);
    }

    [Fact]
    public async Task AfterOwnSvidRotates_NewFlowsUseAFreshConnection_OldFlowKeepsGoing()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        using var dir = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using TestSidecar caller = await TestSidecar.StartAsync(
            mesh.Authority, dir.File("rot.sock"), "/ns/default/sa/rotating", IPAddress.Parse("10.200.0.9"), mesh.Directory, clock);
        X509Certificate2 first = caller.Source.Current.DefaultSvid.Certificate;
        var rotated = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        caller.Source.Updated += (_, context) =>
        {
            if (!context.DefaultSvid.Certificate.Equals(first))
            {
                rotated.TrySetResult();
            }
        };

        await using TunnelStream old = await caller.Pool.OpenAsync(mesh.Api.Peer, 8080);
        await using (TunnelStream second = await caller.Pool.OpenAsync(mesh.Api.Peer, 8081))
        {
            Assert.Equal(1, caller.Pool.ConnectionsOpened); // same SVID: same connection
        }

        // The Workload API's clock passes the rotation time: it streams a new SVID.
        clock.Advance(TimeSpan.FromHours(1));
        await rotated.Task.WaitAsync(Functional); // the source's update event, not a poll
        Assert.False(caller.Source.Current.DefaultSvid.Certificate.Equals(first));

        await using (TunnelStream fresh = await caller.Pool.OpenAsync(mesh.Api.Peer, 8082))
        {
            await fresh.WriteAsync("new"u8.ToArray());
            await fresh.FlushAsync();
            Assert.Equal("new", await ReadExactlyAsync(fresh, 3));
        }

        Assert.Equal(2, caller.Pool.ConnectionsOpened);
        Assert.Equal(2, caller.Pool.GenerationsStarted);
        Assert.Equal(2, caller.Pool.LiveGenerations); // the old one still carries a flow

        // The flow on the old connection is untouched by the rotation.
        await old.WriteAsync("old"u8.ToArray());
        await old.FlushAsync();
        Assert.Equal("old", await ReadExactlyAsync(old, 3));

        await old.DisposeAsync();
        Assert.Equal(1, caller.Pool.LiveGenerations); // retired and empty: disposed
    }

    private static async Task<string> ReadExactlyAsync(Stream stream, int count)
    {
        using var cancel = new CancellationTokenSource(Functional);
        byte[] buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer, cancel.Token);
        return System.Text.Encoding.ASCII.GetString(buffer);
    }

    private static async Task<bool> WaitUntilAsync(Func<bool> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > Functional)
            {
                return false;
            }

            await Task.Delay(5);
        }

        return true;
    }
}
