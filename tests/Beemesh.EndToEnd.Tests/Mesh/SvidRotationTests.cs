using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Mesh;

/// <summary>
/// SVID rotation under load: an agent issuing 20 s SVIDs, two injected sidecars (web calls api), a
/// 60 s throttled transfer through one tunnel while both sides rotate several times. Nothing may
/// drop, every byte must arrive, new flows after the rotations must work, and the agent's
/// <c>/metrics</c> must show the mesh counters (handshakes, bytes, decisions, a revocation).
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class SvidRotationTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("beemesh-rot-").FullName;
    private readonly BeemeshProcesses _beemesh = new(output);
    private static readonly TimeSpan Cap = TimeSpan.FromSeconds(60);
    private int _accepted;
    private TaskCompletionSource _acceptedChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);

    [SkippableFact]
    public async Task Sixty_second_transfer_survives_svid_rotations_and_metrics_show_the_mesh()
    {
        Skip.If(BeemeshEnvironment.BinDirectory is null || !File.Exists(BeemeshEnvironment.BeemeshPath), "out/bin/beemesh is missing: run ./scripts/build");
        using var app = new TcpListener(IPAddress.Loopback, 0);
        app.Start();
        int appPort = ((IPEndPoint)app.LocalEndpoint).Port;
        _ = ServeHashesAsync(app);
        Process agent = Start("agent", "--state-dir", _dir, "--svid-ttl", "20s");
        Assert.True(await _beemesh.WaitForLineAsync(agent, "admin API:", Cap), "the agent did not start"); // printed once its admin socket serves
        int apiTunnel = HostWaits.FreeLoopbackPort(), webTunnel = HostWaits.FreeLoopbackPort(), local = HostWaits.FreeLoopbackPort();
        // A sidecar says it is up once it is registered, holds its SVID, the directory and the policies,
        // and listens: api first, so web's directory holds api's route from the start.
        Process api = Start("sidecar", "--agent", _dir, "--name", "api", "--inbound", $"{apiTunnel}", "--port", $"{appPort}");
        Assert.True(await _beemesh.WaitForLineAsync(api, "beemesh sidecar: spiffe://", Cap), "api's sidecar did not start");
        Process web = Start("sidecar", "--agent", _dir, "--name", "web", "--inbound", $"{webTunnel}", "--upstream", $"api.default:{appPort}={local}");
        Assert.True(await _beemesh.WaitForLineAsync(web, "beemesh sidecar: spiffe://", Cap), "web's sidecar did not start");
        Assert.True(await TryHashAsync(local, "ping"u8.ToArray()), "the first flow through the mesh failed");

        // 60 s of known bytes, 32 KiB every 125 ms, through one tunnel flow.
        var transfer = Stopwatch.StartNew();
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, local);
        NetworkStream stream = client.GetStream();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var random = new Random(20);
        byte[] chunk = new byte[32 * 1024];
        long sent = 0;
        bool midFlowOk = false;
        for (int i = 0; transfer.Elapsed < TimeSpan.FromSeconds(62); i++)
        {
            random.NextBytes(chunk);
            hash.AppendData(chunk);
            await stream.WriteAsync(chunk);
            sent += chunk.Length;
            if (i == 280)
            {
                // ~35 s in: both sides have rotated; a NEW flow must ride a fresh connection.
                midFlowOk = await TryHashAsync(local, "mid-transfer"u8.ToArray()) is true;
            }

            await Task.Delay(125);
        }

        client.Client.Shutdown(SocketShutdown.Send);
        using var reader = new StreamReader(stream);
        using var answerTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        string? answer = await reader.ReadLineAsync(answerTimeout.Token);
        output.WriteLine($"transfer of {sent} bytes took {transfer.Elapsed}");
        Assert.Equal($"{sent} {Convert.ToHexString(hash.GetHashAndReset())}", answer);
        Assert.True(midFlowOk, "a new flow opened during the transfer (after rotation) failed");
        Assert.True(await TryHashAsync(local, "after"u8.ToArray()), "a new flow after the transfer failed");

        // The sidecars report to the agent periodically: wait for the report that carries the transfer
        // and the flow opened after it (a report sent between the two carries the bytes without that flow).
        const string toApi = "beemesh_mesh_bytes_total{workload=\"api.default\",direction=\"to_workload\"}";
        const string connects = "beemesh_mesh_authorization_decisions_total{workload=\"api.default\",decision=\"allow\",trigger=\"connect\"}";
        Dictionary<string, double> metrics = await MetricsAfterReportsAsync(m => m.GetValueOrDefault(toApi) >= sent && m.GetValueOrDefault(connects) >= 4);

        foreach (var (name, value) in metrics.Where(m => m.Key.StartsWith("beemesh_mesh_", StringComparison.Ordinal)))
        {
            output.WriteLine($"{name} {value}");
        }

        Assert.True(metrics["beemesh_mesh_svid_rotations_total{workload=\"web.default\"}"] >= 2, "web's SVID did not rotate at least twice");
        Assert.True(metrics["beemesh_mesh_svid_rotations_total{workload=\"api.default\"}"] >= 2, "api's SVID did not rotate at least twice");
        Assert.True(metrics["beemesh_mesh_connections_kept_at_svid_expiry_total{workload=\"api.default\"}"] >= 1, "no connection outlived its handshake SVID");
        Assert.True(metrics["beemesh_mesh_tls_handshakes_total{workload=\"web.default\",side=\"client\",result=\"ok\"}"] >= 2, "no fresh client connection after rotation");
        Assert.True(metrics["beemesh_mesh_tls_handshakes_total{workload=\"api.default\",side=\"server\",result=\"ok\"}"] >= 1);
        Assert.True(metrics["beemesh_mesh_bytes_total{workload=\"api.default\",direction=\"to_workload\"}"] >= sent);
        Assert.True(metrics[connects] >= 4, "fewer than four flows (ready, transfer, mid-transfer, after) were admitted");
        Assert.False(metrics.ContainsKey("beemesh_mesh_revocations_total{workload=\"api.default\",trigger=\"svid-expired\"}"));

        // A DENY cuts a live (idle) stream, and the agent counts the revocation.
        int acceptedBefore = Volatile.Read(ref _accepted);
        using var idle = new TcpClient();
        await idle.ConnectAsync(IPAddress.Loopback, local);
        await idle.GetStream().WriteAsync("x"u8.ToArray());

        // The flow is live end to end once the app has accepted it (api's sidecar admitted it first).
        using (var admitted = new CancellationTokenSource(Cap))
        {
            while (true)
            {
                Task accepted = Volatile.Read(ref _acceptedChanged).Task; // taken before the check, so no accept in between is missed
                if (Volatile.Read(ref _accepted) != acceptedBefore)
                {
                    break;
                }

                await accepted.WaitAsync(admitted.Token);
            }
        }

        string policy = Path.Combine(_dir, "deny-web.yaml");
        await File.WriteAllTextAsync(policy, """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: api-deny-web
              namespace: default
            spec:
              action: DENY
              rules:
              - from:
                - source:
                    principals: ["example.org/ns/default/sa/web"]
            """);
        Process apply = Start("policy", "apply", "-f", policy, "--agent", _dir);
        Assert.True(apply.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.Equal(0, apply.ExitCode);
        using (var cut = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            int read;
            try
            {
                read = await idle.GetStream().ReadAsync(new byte[16], cut.Token);
            }
            catch (IOException)
            {
                read = 0;
            }

            Assert.Equal(0, read);
        }

        const string revocations = "beemesh_mesh_revocations_total{workload=\"api.default\",trigger=\"policy-changed\"}";
        double revoked = (await MetricsAfterReportsAsync(m => m.GetValueOrDefault(revocations) >= 1)).GetValueOrDefault(revocations);

        Assert.True(revoked >= 1, "the agent's metrics show no revocation");
    }

    /// <summary>The app: reads a connection to its end, answers "COUNT SHA256HEX".</summary>
    private async Task ServeHashesAsync(TcpListener app)
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await app.AcceptSocketAsync();
                Interlocked.Increment(ref _accepted);
                Interlocked.Exchange(ref _acceptedChanged, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(async () =>
            {
                using (socket)
                {
                    try
                    {
                        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                        byte[] buffer = new byte[64 * 1024];
                        long count = 0;
                        int read;
                        while ((read = await socket.ReceiveAsync(buffer)) > 0)
                        {
                            hash.AppendData(buffer, 0, read);
                            count += read;
                        }

                        await socket.SendAsync(Encoding.ASCII.GetBytes($"{count} {Convert.ToHexString(hash.GetHashAndReset())}\n"));
                        socket.Shutdown(SocketShutdown.Send);
                    }
                    catch (SocketException)
                    {
                        // A revoked flow ends with a reset.
                    }
                }
            });
        }
    }

    /// <summary>One short flow: true when the app's digest matches, null when the flow failed.</summary>
    private static async Task<bool?> TryHashAsync(int port, byte[] payload)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            NetworkStream stream = client.GetStream();
            await stream.WriteAsync(payload);
            client.Client.Shutdown(SocketShutdown.Send);
            using var reader = new StreamReader(stream);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            string? line = await reader.ReadLineAsync(timeout.Token);
            return line is null ? null : line == $"{payload.Length} {Convert.ToHexString(SHA256.HashData(payload))}";
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or InvalidOperationException)
        {
            Console.Error.WriteLine($"flow failed: {e.GetType().Name}: {e.Message}");
            return null;
        }
    }

    /// <summary>The agent's metrics once <paramref name="done"/> holds (see <see cref="AgentAdmin.MetricsAfterReportsAsync"/>).</summary>
    private async Task<Dictionary<string, double>> MetricsAfterReportsAsync(Func<Dictionary<string, double>, bool> done)
    {
        using HttpClient admin = AgentAdmin.Client(_dir);
        return await AgentAdmin.MetricsAfterReportsAsync(admin, done);
    }

    private Process Start(params string[] args) => _beemesh.Start(args);

    public void Dispose()
    {
        _beemesh.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
