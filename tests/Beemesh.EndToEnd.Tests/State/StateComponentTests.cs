using System.Diagnostics;
using Beemesh.EndToEnd.Tests.Overlay;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.State;

/// <summary>
/// Stores declared by a Dapr <c>Component</c> file of type <c>state.beemesh</c>
/// (<c>--resources-path</c>): a strong store shared by two <c>beemesh run</c> replicas, and the
/// same store served by <c>beemesh sidecar</c> to two pods (network namespaces of their own on one
/// bridge), each pod's app calling Dapr's API on its own loopback.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class StateComponentTests(ITestOutputHelper output) : MeshAgentTest, IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);
    private const string Api = "http://127.0.0.1:3500/v1.0/state/ledger";
    private readonly string _dir = Directory.CreateTempSubdirectory("bm-components-").FullName;

    private string ComponentFile()
    {
        string path = Path.Combine(_dir, "ledger.yaml");
        File.WriteAllText(path, """
            apiVersion: dapr.io/v1alpha1
            kind: Component
            metadata:
              name: ledger
            spec:
              type: state.beemesh
              version: v1
              metadata:
              - name: consistency
                value: strong
            scopes:
            - ledger
            """);
        return path;
    }

    private static string Save(string key, string value) =>
        $"curl -s -w ' %{{http_code}}' -H 'content-type: application/json' -d '[{{\"key\":\"{key}\",\"value\":\"{value}\"}}]' {Api}";

    private static string Get(string key) => $"curl -s {Api}/{key}";

    private string Fifo(string name)
    {
        string fifo = Path.Combine(_dir, name);
        using Process mkfifo = Process.Start("mkfifo", fifo)!;
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
        return fifo;
    }

    [SkippableFact]
    public async Task A_strong_store_declared_by_a_component_file_is_shared_by_two_run_replicas()
    {
        BeemeshEnvironment.RequireReady("curl");
        Skip.If(Agent is null, "the agent could not be started");
        using var processes = new BeemeshProcesses(output);
        string file = ComponentFile();
        string fifoA = Fifo("a"), fifoB = Fifo("b");

        // A writes alone (the group's first member), then waits; B joins, reads A's write, writes its
        // own (committed on both: a majority of two), then waits; A reads B's write.
        Process a = processes.Start(["run", .. Agent!.Workload("ledger"), "--resources-path", file, "--", "sh", "-c",
            $"echo \"a-save=$({Save("k1", "from-a")})\"; read -r x < {fifoA}; echo \"a-get=$({Get("k2")})\""]);
        Assert.True(await processes.WaitForLineAsync(a, "a-save=", Timeout), "replica a did not save");
        Assert.Contains(processes.Lines(a), l => l == "a-save= 204");
        Assert.Contains(processes.Lines(a), l => l.StartsWith("beemesh run: strong store ledger: replica ", StringComparison.Ordinal));

        Process b = processes.Start(["run", .. Agent!.Workload("ledger"), "--components-path", _dir, "--", "sh", "-c",
            $"echo \"b-get=$({Get("k1")})\"; echo \"b-save=$({Save("k2", "from-b")})\"; read -r x < {fifoB}"]);
        Assert.True(await processes.WaitForLineAsync(b, "b-save=", Timeout), "replica b did not save");
        Assert.Contains(processes.Lines(b), l => l == "b-get=\"from-a\"");
        Assert.Contains(processes.Lines(b), l => l == "b-save= 204");

        await File.WriteAllTextAsync(fifoA, "go\n");
        Assert.True(await processes.WaitForLineAsync(a, "a-get=", Timeout), "replica a did not read");
        Assert.Contains(processes.Lines(a), l => l == "a-get=\"from-b\"");
        await a.WaitForExitAsync();
        await File.WriteAllTextAsync(fifoB, "go\n");
        await b.WaitForExitAsync();
        Assert.Equal(0, a.ExitCode);
        Assert.Equal(0, b.ExitCode);
    }

    [SkippableFact]
    public async Task Beemesh_sidecar_serves_a_strong_store_to_two_pods_of_one_workload()
    {
        BeemeshEnvironment.RequireReady("curl", "ip");
        Skip.If(Agent is null, "the agent could not be started");
        using var processes = new BeemeshProcesses(output);
        using var pods = BridgedNamespaces.Create(2);
        string file = ComponentFile();

        // Each pod: a network namespace of its own (10.99.0.1 and .2 on one bridge) with its sidecar,
        // whose store replicas listen at the pod's address, found through the agent's directory.
        var sidecars = new List<Process>();
        for (int i = 0; i < 2; i++)
        {
            Process sidecar = processes.StartProgram("ip", "netns", "exec", pods.Names[i], BeemeshEnvironment.BeemeshPath, "sidecar",
                "--agent", Agent!.Directory, "--name", "ledger", "--inbound", "15006", "--resources-path", file,
                "--state-address", BridgedNamespaces.Address(i));
            Assert.True(await processes.WaitForLineAsync(sidecar, "beemesh sidecar: spiffe://", Timeout), $"pod {i}'s sidecar did not start");
            string started = processes.Lines(sidecar).First(l => l.StartsWith("beemesh sidecar: spiffe://", StringComparison.Ordinal));
            output.WriteLine(started);
            Assert.EndsWith(", Dapr state API 127.0.0.1:3500 and 127.0.0.1:50001 (ledger=strong)", started, StringComparison.Ordinal);
            Assert.Contains(processes.Lines(sidecar), l => l.StartsWith($"beemesh sidecar: strong store ledger: replica {BridgedNamespaces.Address(i)}:", StringComparison.Ordinal));
            sidecars.Add(sidecar);
        }

        // The pods' apps: curl in each pod's namespace, on the pod's own loopback.
        async Task<string> InPodAsync(int pod, string command)
        {
            Process p = processes.StartProgram("ip", "netns", "exec", pods.Names[pod], "sh", "-c", $"echo \"out=$({command})\"");
            Assert.True(await processes.WaitForLineAsync(p, "out=", Timeout), $"the command in pod {pod} did not answer");
            await p.WaitForExitAsync();
            return processes.Lines(p).First(l => l.StartsWith("out=", StringComparison.Ordinal))[4..];
        }

        Assert.Equal(" 204", await InPodAsync(0, Save("k", "from-pod-0")));
        Assert.Equal("\"from-pod-0\"", await InPodAsync(1, Get("k")));
        Assert.Equal(" 204", await InPodAsync(1, Save("k", "from-pod-1")));
        Assert.Equal("\"from-pod-1\"", await InPodAsync(0, Get("k")));
        Assert.All(sidecars, s => Assert.False(s.HasExited, "a sidecar exited"));
    }

    [SkippableFact]
    public async Task A_pods_sidecar_without_a_state_address_refuses_a_strong_store()
    {
        BeemeshEnvironment.RequireReady("ip");
        Skip.If(Agent is null, "the agent could not be started");
        using var processes = new BeemeshProcesses(output);
        using var pods = BridgedNamespaces.Create(1);
        Process sidecar = processes.StartProgram("ip", "netns", "exec", pods.Names[0], BeemeshEnvironment.BeemeshPath, "sidecar",
            "--agent", Agent!.Directory, "--name", "ledger", "--inbound", "15006", "--resources-path", ComponentFile());
        await sidecar.WaitForExitAsync().WaitAsync(Timeout);
        Assert.Equal(1, sidecar.ExitCode);
        Assert.Contains(processes.Lines(sidecar), l => l.StartsWith("beemesh sidecar: strong store ledger: this sidecar is in a network namespace of its own", StringComparison.Ordinal));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
