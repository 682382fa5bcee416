using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Beemesh.Authorization;
using Beemesh.Sidecar.Inbound;
using Beemesh.Sidecar.Mesh;
using Beemesh.Sidecar.Tunnel;
using Xunit.Abstractions;

namespace Beemesh.Sidecar.Tests.Tunnel;

public sealed class TunnelTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Functional = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Flow_ThroughTunnel_GetsEcho()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();

        await using TunnelStream tunnel = await mesh.Web.Outbound.OpenAsync(new IPEndPoint(mesh.Api.MeshAddress, 8080));
        await tunnel.WriteAsync("hello mesh"u8.ToArray());
        await tunnel.FlushAsync();
        string echoed = await ReadExactlyAsync(tunnel, 10);

        Assert.Equal("hello mesh", echoed);
        Assert.Contains((mesh.Web.MeshAddress, 8080), mesh.Api.Guest.Calls);
    }

    [Fact]
    public async Task WorkloadHalfClose_ReachesCallerAsEndOfStream()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();

        await using TunnelStream tunnel = await mesh.Web.Outbound.OpenAsync(new IPEndPoint(mesh.Api.MeshAddress, EchoGuestConnector.GreetingPort));
        string greeting = await ReadToEndAsync(tunnel);
        // The other direction is still open after the workload's FIN.
        await tunnel.WriteAsync("still here"u8.ToArray());
        await tunnel.FlushAsync();

        Assert.Equal(EchoGuestConnector.Greeting, greeting);
        Assert.Equal(1, mesh.Api.Server.Connections.Count);
        Assert.True(await WaitUntilAsync(() => mesh.Api.Server.Connections.Connections.Single().BytesToWorkload == 10));
    }

    [Fact]
    public async Task RedirectedGuestSocket_IsMappedBackToItsDestination()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        var destination = new IPEndPoint(mesh.Api.MeshAddress, 9090);

        Assert.False(mesh.Web.Outbound.TryRedirect(new IPEndPoint(IPAddress.Parse("192.0.2.1"), 80), out _));
        Assert.True(mesh.Web.Outbound.TryRedirect(destination, out IPEndPoint target));
        using var guest = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await guest.ConnectAsync(target);
        mesh.Web.Outbound.Connected(destination, (IPEndPoint)guest.LocalEndPoint!);
        await guest.SendAsync("ping"u8.ToArray());
        string echoed = await ReadExactlyAsync(new NetworkStream(guest), 4);

        Assert.Equal("ping", echoed);
        Assert.Contains((mesh.Web.MeshAddress, 9090), mesh.Api.Guest.Calls);
    }

    [Fact]
    public async Task CallerHalfClose_ReachesWorkloadAsFin_AndTheFlowEnds()
    {
        // The FIN travels as END_STREAM. Without it a flow whose caller closes first stays open
        // forever on both sides, and the pooled connection runs out of streams.
        await using MeshFixture mesh = await MeshFixture.StartAsync();

        await using TunnelStream tunnel = await mesh.Web.Outbound.OpenAsync(new IPEndPoint(mesh.Api.MeshAddress, 8080));
        await tunnel.WriteAsync("last words"u8.ToArray());
        await tunnel.FlushAsync();
        await tunnel.ShutdownWriteAsync();
        string echoed = await ReadToEndAsync(tunnel);

        Assert.Equal("last words", echoed); // the workload echoed, saw the FIN, and closed: end of stream
        Assert.True(await WaitUntilAsync(() => mesh.Api.Guest.Endings.Contains("fin")));
        Assert.True(await WaitUntilAsync(() => mesh.Api.Server.Connections.Count == 0));
    }

    [Fact]
    public async Task CallerUnknownToTheDirectory_IsRefusedWith403()
    {
        // A verified SVID is not enough: without a mesh address the workload could not be told
        // who called, so the connection is refused rather than presented from a made-up source.
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        mesh.Directory.Remove(mesh.Evil.MeshAddress);

        TunnelRefusedException refused = await Assert.ThrowsAsync<TunnelRefusedException>(() => mesh.Evil.Pool.OpenAsync(mesh.Api.Peer, 8080));

        Assert.Equal(HttpStatusCode.Forbidden, refused.Status);
        Assert.Empty(mesh.Api.Guest.Calls);
    }

    [Fact]
    public async Task AllowPolicyForWeb_RefusesEvilWith403AndAudits()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        mesh.Api.Policies.Set([MeshFixture.Policy("allow-web", PolicyAction.Allow, "example.org/ns/default/sa/web")]);
        var audits = new List<AuditRecord>();
        mesh.Api.Server.Connections.Audited += (_, record) => audits.Add(record);

        await using (TunnelStream allowed = await mesh.Web.Pool.OpenAsync(mesh.Api.Peer, 8080))
        {
            await allowed.WriteAsync("ok"u8.ToArray());
            await allowed.FlushAsync();
            Assert.Equal("ok", await ReadExactlyAsync(allowed, 2));
        }

        TunnelRefusedException refused = await Assert.ThrowsAsync<TunnelRefusedException>(() => mesh.Evil.Pool.OpenAsync(mesh.Api.Peer, 8080));

        Assert.Equal(HttpStatusCode.Forbidden, refused.Status);
        AuditRecord audit = Assert.Single(audits);
        Assert.Equal("denied", audit.Action);
        Assert.Equal("spiffe://example.org/ns/evil/sa/evil", audit.Caller);
        Assert.Equal(8080, audit.DestinationPort);
        Assert.DoesNotContain(mesh.Api.Guest.Calls, call => call.Caller.Equals(mesh.Evil.MeshAddress));
    }

    [Fact]
    public async Task DenyWhileStreaming_CutsBothSides()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        var audits = new System.Collections.Concurrent.ConcurrentQueue<AuditRecord>();
        mesh.Api.Server.Connections.Audited += (_, record) => audits.Enqueue(record);
        var destination = new IPEndPoint(mesh.Api.MeshAddress, 7000);
        Assert.True(mesh.Web.Outbound.TryRedirect(destination, out IPEndPoint target));
        using var guest = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await guest.ConnectAsync(target);
        mesh.Web.Outbound.Connected(destination, (IPEndPoint)guest.LocalEndPoint!);
        var stream = new NetworkStream(guest);
        byte[] chunk = new byte[4096];
        await stream.WriteAsync(chunk);
        await ReadExactlyAsync(stream, chunk.Length);
        Assert.True(await WaitUntilAsync(() => mesh.Api.Server.Connections.Count == 1));

        var clock = Stopwatch.StartNew();
        mesh.Api.Policies.Set([MeshFixture.Policy("deny-web", PolicyAction.Deny, "example.org/ns/default/sa/web")]);
        Exception? failure = null;
        try
        {
            using var cancel = new CancellationTokenSource(Functional);
            int read = await stream.ReadAsync(chunk, cancel.Token);
            Assert.Equal(0, read);
        }
        catch (IOException e)
        {
            failure = e;
        }

        TimeSpan latency = clock.Elapsed;
        output.WriteLine($"revocation latency (policy change -> caller's socket closed): {latency.TotalMilliseconds:F2} ms");
        Assert.IsType<SocketException>(failure?.InnerException);
        Assert.Equal(SocketError.ConnectionReset, ((SocketException)failure!.InnerException!).SocketErrorCode);
        Assert.True(await WaitUntilAsync(() => mesh.Api.Guest.Endings.Contains(SocketError.ConnectionReset.ToString())));
        // The registry aborts the connection first, then drops it from its live set and audits it.
        Assert.True(await WaitUntilAsync(() => !audits.IsEmpty && mesh.Api.Server.Connections.Count == 0));
        AuditRecord audit = Assert.Single(audits);
        Assert.Equal("revoked", audit.Action);
        Assert.Equal("default/deny-web", audit.Policy);
        Assert.Equal(0, audit.Rule);
        Assert.Equal(LiveConnectionRegistry.TriggerPolicy, audit.Trigger);
        Assert.Equal(4096, audit.BytesToWorkload);
        Assert.Equal(0, mesh.Api.Server.Connections.Count);
    }

    [Fact]
    public async Task TwentyConcurrentFlows_ShareOneHttp2Connection()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();

        var flows = new Task<string>[20];
        for (int i = 0; i < flows.Length; i++)
        {
            int n = i;
            flows[i] = Task.Run(async () =>
            {
                await using TunnelStream tunnel = await mesh.Web.Pool.OpenAsync(mesh.Api.Peer, 8000 + n);
                byte[] message = Encoding.ASCII.GetBytes($"flow {n}");
                await tunnel.WriteAsync(message);
                await tunnel.FlushAsync();
                return await ReadExactlyAsync(tunnel, message.Length);
            });
        }

        string[] echoes = await Task.WhenAll(flows).WaitAsync(Functional);

        for (int i = 0; i < echoes.Length; i++)
        {
            Assert.Equal($"flow {i}", echoes[i]);
        }

        Assert.Equal(1, mesh.Web.Pool.ConnectionsOpened);
        Assert.Equal(1, mesh.Api.Server.HandshakesStarted);
    }

    [Fact]
    public async Task PeerFromAnotherTrustDomain_IsRefusedAtTls()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();

        await Assert.ThrowsAsync<HttpRequestException>(() => mesh.Foreign.Pool.OpenAsync(mesh.Api.Peer, 8080));

        Assert.Empty(mesh.Api.Guest.Calls);
        Assert.Equal(0, mesh.Api.Server.Connections.Count);
    }

    [Fact]
    public async Task ServerWithUnexpectedSpiffeId_IsRefused()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        // The directory says the workload behind api's tunnel is "evil": api's real SVID must not pass.
        var wrong = new MeshPeer(mesh.Evil.Id, mesh.Api.Server.Endpoint, mesh.Api.MeshAddress);

        HttpRequestException e = await Assert.ThrowsAsync<HttpRequestException>(() => mesh.Web.Pool.OpenAsync(wrong, 8080));

        Assert.Equal(HttpRequestError.SecureConnectionError, e.HttpRequestError);
        Assert.Empty(mesh.Api.Guest.Calls);
    }

    private static async Task<string> ReadToEndAsync(Stream stream)
    {
        using var cancel = new CancellationTokenSource(Functional);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, cancel.Token);
        return Encoding.ASCII.GetString(buffer.ToArray());
    }

    private static async Task<string> ReadExactlyAsync(Stream stream, int count)
    {
        using var cancel = new CancellationTokenSource(Functional);
        byte[] buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer, cancel.Token);
        return Encoding.ASCII.GetString(buffer);
    }

    /// <summary>Waits for a condition another thread makes true (a functional bound, not a timing assertion).</summary>
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
