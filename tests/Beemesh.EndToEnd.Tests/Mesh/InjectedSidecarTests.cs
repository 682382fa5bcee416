using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Mesh;

/// <summary>
/// Injected-container mode: sidecars without a tap (they share the workload's network), one
/// terminating inbound mTLS for an app on localhost, one exposing that app as a local upstream.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class InjectedSidecarTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("beemesh-injected-").FullName;
    private readonly BeemeshProcesses _beemesh = new(output);

    [SkippableFact]
    public async Task Upstream_port_reaches_the_app_behind_the_other_sidecar_and_policy_applies()
    {
        Skip.If(BeemeshEnvironment.BinDirectory is null || !File.Exists(BeemeshEnvironment.BeemeshPath), "out/bin/beemesh is missing: run ./scripts/build");
        using var app = new TcpListener(IPAddress.Loopback, 0);
        app.Start();
        int appPort = ((IPEndPoint)app.LocalEndpoint).Port;
        _ = ServeAsync(app);
        Process agent = Start("agent", "--state-dir", _dir);
        Assert.True(await _beemesh.WaitForLineAsync(agent, "admin API:", TimeSpan.FromSeconds(60)), "the agent did not start"); // printed once its admin socket serves
        int apiTunnel = HostWaits.FreeLoopbackPort(), webTunnel = HostWaits.FreeLoopbackPort(), local = HostWaits.FreeLoopbackPort();
        // A sidecar says it is up once it is registered, holds its SVID, the directory and the policies,
        // and listens: api first, so web's directory holds api's route from the start.
        var api = Start("sidecar", "--agent", _dir, "--name", "api", "--inbound", $"{apiTunnel}", "--port", $"{appPort}");
        Assert.True(await _beemesh.WaitForLineAsync(api, "beemesh sidecar: spiffe://", TimeSpan.FromSeconds(60)), "api's sidecar did not start");
        var web = Start("sidecar", "--agent", _dir, "--name", "web", "--inbound", $"{webTunnel}", "--upstream", $"api.default:{appPort}={local}");
        Assert.True(await _beemesh.WaitForLineAsync(web, "beemesh sidecar: spiffe://", TimeSpan.FromSeconds(60)), "web's sidecar did not start");

        Assert.Equal("hello from the app", await TryAskAsync(local));
        var clock = Stopwatch.StartNew();

        // ALLOW only someone else: web's flows are now refused at api's sidecar.
        string policy = Path.Combine(_dir, "allow-other.yaml");
        await File.WriteAllTextAsync(policy, """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: api-allow-other
              namespace: default
            spec:
              action: ALLOW
              rules:
              - from:
                - source:
                    principals: ["example.org/ns/default/sa/other"]
            """);
        var apply = Start("policy", "apply", "-f", policy, "--agent", _dir);
        Assert.True(apply.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.Equal(0, apply.ExitCode);
        // The sidecar's policy watch wakes on the change; wait for the first flow api's sidecar refuses
        // under the new policy, named in its audit line. A crashed sidecar also ends flows, so the refusal
        // counts only with its audit record and both sidecars still running.
        bool Refused(string line) => line.Contains("audit action=denied caller=", StringComparison.Ordinal)
            && line.Contains("/ns/default/sa/web ", StringComparison.Ordinal) && line.Contains($" port={appPort} ", StringComparison.Ordinal);
        clock.Restart();
        string? after = "not asked";
        while (!_beemesh.Lines(api).Any(Refused) && clock.Elapsed < TimeSpan.FromSeconds(20))
        {
            after = await TryAskAsync(local);
        }

        Assert.Contains(_beemesh.Lines(api), Refused);
        Assert.Null(await TryAskAsync(local));
        Assert.False(api.HasExited, "the api sidecar exited");
        Assert.False(web.HasExited, "the web sidecar exited");
        output.WriteLine($"api sidecar pid {api.Id}, web sidecar pid {web.Id}, last answer before the refusal was logged: {after ?? "(none)"}");
    }

    private Process Start(params string[] args) => _beemesh.Start(args);

    private static async Task ServeAsync(TcpListener app)
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await app.AcceptSocketAsync();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            using (client)
            {
                await client.SendAsync(Encoding.UTF8.GetBytes("hello from the app\n"));
                client.Shutdown(SocketShutdown.Send);
            }
        }
    }

    private static async Task<string?> TryAskAsync(int port)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            using var reader = new StreamReader(client.GetStream());
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            return await reader.ReadLineAsync(timeout.Token);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        _beemesh.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
