using System.Diagnostics;
using System.Text.Json;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Podman;

/// <summary>
/// The whole rootless round trip, as an unprivileged user: `beemesh inject -f app.yaml | podman
/// kube play -` with the pods' network made by our slirp4netns (containers.conf network_cmd_path),
/// an image built locally, the agent and `beemesh run` workloads run by that user. A Deployment of
/// 2 replicas gives two pods whose sidecars both register; a `beemesh run` workload calls the pods'
/// app by name (through the agent's tunnel port, handed to a pod's sidecar) with its identity, and a
/// DENY policy refuses it; the pods' app calls the `beemesh run` workload by name through the
/// sidecar's resolver. The app's port is declared with the <c>beemesh.io/ports</c> annotation, not a
/// containerPort: podman 4.3 publishes every containerPort on the host, where two replicas collide.
/// </summary>
[Collection("namespaces")]
public sealed class RootlessKubePlayMeshTests(PodmanEnvironment env, ITestOutputHelper output) : IClassFixture<PodmanEnvironment>
{
    private const string BaseImage = "localhost/beemesh-test-base:bookworm";
    private const int ApiPort = 8097;
    private const string PodPage = "^pod-page-\\S+\n 200$";

    [SkippableFact]
    public async Task Injected_deployment_played_rootless_joins_the_mesh_both_ways_with_identity_and_policy()
    {
        Skip.If(env.SkipReason is not null, env.SkipReason);
        Skip.If(BeemeshEnvironment.BinDirectory is null || !File.Exists(BeemeshEnvironment.BeemeshPath), "out/bin/beemesh is missing: run ./scripts/build");
        Skip.If(BeemeshEnvironment.FindOnPath("setpriv") is null, "'setpriv' (util-linux) is not installed");
        Skip.If(env.AsUser($"podman image exists {BaseImage}").ExitCode != 0,
            $"{BaseImage} is not in {env.User}'s image store (ImageBuildTests makes it with mmdebstrap and keeps it)");
        var clock = Stopwatch.StartNew();
        string id = Guid.NewGuid().ToString("N")[..8];
        string tag = $"localhost/beemesh-kube-mesh:{id}";
        string work = Path.Combine(env.Directory!, "kube-" + id);
        string agentDir = Path.Combine(work, "agent");
        string bin = Path.Combine(work, "bin");
        string context = Path.Combine(work, "image");
        string www = Path.Combine(work, "www");
        foreach (string d in new[] { agentDir, bin, context, Path.Combine(context, "www"), www })
        {
            Directory.CreateDirectory(d);
        }

        string beemesh = Path.Combine(bin, "beemesh");
        foreach (string name in new[] { "beemesh", "beemesh-nsenter" })
        {
            File.Copy(Path.Combine(BeemeshEnvironment.BinDirectory!, name), Path.Combine(bin, name));
        }

        File.WriteAllText(Path.Combine(www, "index.html"), "api-page\n");
        // One image for both containers: Debian's base with beemesh (the sidecar) and busybox (the app).
        File.Copy(BeemeshEnvironment.BeemeshPath, Path.Combine(context, "beemesh"));
        File.Copy("/bin/busybox", Path.Combine(context, "busybox"));
        File.WriteAllText(Path.Combine(context, "www", "index.html"), "pod-page\n");
        // What a Dapr app does first: find the API through the variables inject gave the app container, then save and read a key.
        File.WriteAllText(Path.Combine(context, "dapr-check"), """
            #!/bin/sh
            echo "env: APP_ID=$APP_ID DAPR_HTTP_PORT=$DAPR_HTTP_PORT DAPR_GRPC_PORT=$DAPR_GRPC_PORT DAPR_HTTP_ENDPOINT=$DAPR_HTTP_ENDPOINT DAPR_GRPC_ENDPOINT=$DAPR_GRPC_ENDPOINT"
            busybox wget -q -O - --header 'Content-Type: application/json' --post-data '[{"key":"k","value":"from-the-pod"}]' "$DAPR_HTTP_ENDPOINT/v1.0/state/statestore" || exit 1
            echo "read: $(busybox wget -q -O - "$DAPR_HTTP_ENDPOINT/v1.0/state/statestore/k")"

            """);
        File.WriteAllText(Path.Combine(context, "Containerfile"),
            $"FROM {BaseImage}\nCOPY beemesh /usr/local/bin/beemesh\nCOPY busybox /bin/busybox\nCOPY www /www\nCOPY dapr-check /dapr-check\n");
        Assert.Equal(0, PodmanEnvironment.Run("chown", ["-R", $"{env.User}:", work]).ExitCode);
        string yamlFile = Path.Combine(work, "injected.yaml");
        var processes = new BeemeshProcesses(output);
        try
        {
            var build = env.AsUser($"cd {context} && podman build -q -t {tag} .", TimeSpan.FromMinutes(5));
            output.WriteLine(build.Output);
            Assert.True(build.ExitCode == 0, build.Output);

            // The agent and the mesh workloads, as the user.
            Process agent = processes.StartProgram("setpriv", [.. AsUserArgs(), beemesh, "agent", "--state-dir", agentDir]);
            Assert.True(await processes.WaitForLineAsync(agent, "admin API:", TimeSpan.FromSeconds(60)), "the agent did not start");
            Process api = processes.StartProgram("setpriv", [.. AsUserArgs(), beemesh, "run", "--agent", agentDir, "--name", "api", "--port", $"{ApiPort}/http", "--",
                "sh", "-c", $"busybox httpd -f -p {ApiPort} -h {www} & while ! ss -ltn | grep -q ':{ApiPort} '; do sleep 0.05; done; echo api-ready; wait"]);
            Assert.True(await processes.WaitForLineAsync(api, "api-ready", TimeSpan.FromSeconds(60)), "the api workload did not start");

            string app = $"""
                apiVersion: apps/v1
                kind: Deployment
                metadata:
                  name: web
                  namespace: default
                spec:
                  replicas: 2
                  selector:
                    matchLabels:
                      app: web
                  template:
                    metadata:
                      labels:
                        app: web
                      annotations:
                        beemesh.io/ports: 8080/http
                    spec:
                      serviceAccountName: web
                      containers:
                      - name: app
                        image: {tag}
                        command: [busybox, sh, -c, "mkdir -p /tmp/www && echo pod-page-$(busybox hostname) > /tmp/www/index.html && exec busybox httpd -f -p 8080 -h /tmp/www"]
                """;
            File.WriteAllText(Path.Combine(work, "app.yaml"), app);
            PodmanEnvironment.Run("chown", [$"{env.User}:", Path.Combine(work, "app.yaml")]);
            // The walk-through: inject, then play what it wrote (kept in a file too, for `kube down`).
            var play = env.AsUser(
                $"{beemesh} inject -f {work}/app.yaml --image {tag} --agent-dir {agentDir} --mesh-dns --node-loopback 10.0.2.2 | tee {yamlFile} | " +
                "podman kube play --network slirp4netns:allow_host_loopback=true -", TimeSpan.FromMinutes(4));
            output.WriteLine(play.Output);
            Assert.True(play.ExitCode == 0, play.Output);

            // Both replicas' sidecars register as web.default, each from its own pod.
            using HttpClient admin = AgentAdmin.Client(agentDir);
            List<JsonElement> webs = [];
            Assert.True(await AgentAdmin.UntilAsync(p => AgentAdmin.WorkloadsChangedAsync(admin, p), async () =>
            {
                using JsonDocument list = JsonDocument.Parse(await admin.GetStringAsync("v1/workloads"));
                webs = [.. Workloads(list.RootElement).Where(w => w.GetProperty("name").GetString() == "web").Select(w => w.Clone())];
                return webs.Count == 2;
            }, TimeSpan.FromSeconds(120)), Logs("web-pod-0", "web-pod-1"));
            foreach (JsonElement web in webs)
            {
                output.WriteLine(web.ToString());
                Assert.Equal("spiffe://example.org/ns/default/sa/web", web.GetProperty("spiffeId").GetString());
                // The replica form: the tunnel port hands each replica's connections to that replica.
                Assert.Equal($"{web.GetProperty("id").GetString()}.web.default.example.org", web.GetProperty("serverName").GetString());
            }

            Assert.NotEqual(webs[0].GetProperty("pid").GetInt32(), webs[1].GetProperty("pid").GetInt32());
            output.WriteLine(Logs("web-pod-0", "web-pod-1"));
            output.WriteLine(env.AsUser($"{beemesh} status --agent {agentDir}").Output);

            // A mesh workload calls the pods' app by name: through the agent's tunnel port into a pod.
            Assert.Matches(PodPage, await CallWebAsync(processes, beemesh, agentDir, "client"));

            // Both replicas serve: a workload's calls to web.default are spread over the two pods, one per connection.
            Process spread = processes.StartProgram("setpriv", [.. AsUserArgs(), beemesh, "run", "--agent", agentDir, "--name", "spread", "--",
                "sh", "-c", "for i in $(seq 10); do curl -s --max-time 10 http://web.default:8080/; done; echo calls-done"]);
            Assert.True(await processes.WaitForLineAsync(spread, "calls-done", TimeSpan.FromSeconds(120)), "the ten calls did not finish");
            string[] pages = [.. processes.Lines(spread).Where(l => l.StartsWith("pod-page-", StringComparison.Ordinal))];
            output.WriteLine($"10 calls: {string.Join(", ", pages.GroupBy(p => p).Select(g => $"{g.Count()} from {g.Key}"))}");
            Assert.Equal(10, pages.Length);
            Assert.Equal(2, pages.Distinct().Count());

            // The pods' app calls the mesh workload by name, through its sidecar's resolver.
            var fromPod = env.AsUser($"podman exec web-pod-0-app busybox wget -q -O - http://api.default.svc.cluster.local:{ApiPort}/");
            output.WriteLine(fromPod.Output);
            Assert.Equal(0, fromPod.ExitCode);
            Assert.Contains("api-page", fromPod.Output, StringComparison.Ordinal);

            // The app container got Dapr's variables (as `beemesh run` gives them) and reaches the pod sidecar's state API with them.
            var dapr = env.AsUser("podman exec web-pod-0-app sh /dapr-check");
            output.WriteLine(dapr.Output);
            Assert.True(dapr.ExitCode == 0, dapr.Output);
            Assert.Contains(
                "env: APP_ID=web DAPR_HTTP_PORT=3500 DAPR_GRPC_PORT=50001 DAPR_HTTP_ENDPOINT=http://127.0.0.1:3500 DAPR_GRPC_ENDPOINT=http://127.0.0.1:50001",
                dapr.Output, StringComparison.Ordinal);
            Assert.Contains("read: \"from-the-pod\"", dapr.Output, StringComparison.Ordinal);

            // Identity and policy: DENY the client at web (the pods' sidecars decide): 403.
            string policy = Path.Combine(work, "deny.yaml");
            File.WriteAllText(policy, """
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata:
                  name: web-deny-client
                  namespace: default
                spec:
                  action: DENY
                  rules:
                  - from:
                    - source:
                        principals: ["example.org/ns/default/sa/client"]
                """);
            var apply = PodmanEnvironment.Run(BeemeshEnvironment.BeemeshPath, ["policy", "apply", "-f", policy, "--agent", agentDir]);
            output.WriteLine(apply.Output);
            Assert.Equal(0, apply.ExitCode);
            // The next call goes after both pods' sidecars have said they enforce the new set (their reports, sent at once).
            Assert.True(await AgentAdmin.UntilAsync(p => AgentAdmin.ReportsChangedAsync(admin, p), () => AgentAdmin.PolicyInForceAsync(admin, "web"), TimeSpan.FromSeconds(30)),
                "the pods' sidecars did not report the new policy set");
            string denied = await CallWebAsync(processes, beemesh, agentDir, "client");

            Assert.EndsWith(" 403", denied, StringComparison.Ordinal);
            // Another identity is still let in.
            Assert.Matches(PodPage, await CallWebAsync(processes, beemesh, agentDir, "other"));
            output.WriteLine($"round trip in {clock.Elapsed.TotalSeconds:F0} s");
        }
        finally
        {
            if (File.Exists(yamlFile))
            {
                output.WriteLine(env.AsUser($"podman kube down {yamlFile}").Output);
            }

            env.AsUser("podman pod rm -f web-pod-0 web-pod-1 >/dev/null 2>&1; true");
            env.AsUser($"podman rmi -f {tag} >/dev/null 2>&1; true");
            processes.Dispose();
        }
    }

    private string[] AsUserArgs() =>
        ["--reuid", env.User!, "--regid", env.User!, "--init-groups", "--reset-env", "--"];

    private static IEnumerable<JsonElement> Workloads(JsonElement root) =>
        root.ValueKind == JsonValueKind.Array ? root.EnumerateArray() : root.GetProperty("workloads").EnumerateArray();

    private async Task<string> CallWebAsync(BeemeshProcesses processes, string beemesh, string agentDir, string name)
    {
        Process run = processes.StartProgram("setpriv", [.. AsUserArgs(), beemesh, "run", "--agent", agentDir, "--name", name, "--",
            "sh", "-c", "echo \"call:$(curl -s --max-time 10 -w ' %{http_code}' http://web.default:8080/ | tr '\\n' '|')\""]);
        Assert.True(await processes.WaitForLineAsync(run, "call:", TimeSpan.FromSeconds(90)), $"{name}'s call did not finish");
        await run.WaitForExitAsync();
        string line = processes.Lines(run).First(l => l.StartsWith("call:", StringComparison.Ordinal))["call:".Length..];
        output.WriteLine($"{name}: {line}");
        return line.Replace('|', '\n');
    }

    private string Logs(params string[] pods) =>
        string.Join('\n', pods.Select(p => env.AsUser($"podman logs {p}-beemesh-sidecar").Output));
}
