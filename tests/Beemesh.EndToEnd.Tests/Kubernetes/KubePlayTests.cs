using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Kubernetes;

/// <summary>
/// The published (NativeAOT) <c>out/bin/beemesh inject</c> against real manifests, and podman 4.3's
/// <c>kube play --start=false</c> accepting its output: a Deployment of 2 replicas becomes two pods,
/// each with the app container and the beemesh sidecar, its hostPath volume and downward-API env.
/// Runs podman as root; the rootless round trip with the mesh is another test.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class KubePlayTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void PublishedCliInjectsAndKubePlayAcceptsTheOutput()
    {
        Skip.If(BeemeshEnvironment.BinDirectory is null, "out/bin/beemesh is missing: run ./scripts/build");
        string? reason = Podman.SkipReason();
        Skip.If(reason is not null, reason);
        string id = Guid.NewGuid().ToString("N")[..8];
        string image = Podman.BusyboxImage($"localhost/beemesh-kube-test:{id}");
        var dir = Directory.CreateTempSubdirectory("beemesh-kube-");
        string agentDir = Path.Combine(dir.FullName, "agent");
        Directory.CreateDirectory(agentDir);
        string manifests = $"""
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: web-{id}
              namespace: shop
            spec:
              replicas: 2
              selector:
                matchLabels:
                  app: web-{id}
              template:
                metadata:
                  labels:
                    app: web-{id}
                spec:
                  serviceAccountName: web
                  containers:
                  - name: app
                    image: {image}
                    command: [sh, -c, "sleep 1000"]
                    ports:
                    - containerPort: 8080
                      name: http
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: web-{id}
            spec:
              selector:
                app: web-{id}
              ports:
              - port: 80
                targetPort: 8080

            """;
        string injectedFile = Path.Combine(dir.FullName, "injected.yaml");
        try
        {
            // From stdin, as in `beemesh inject -f - < app.yaml | podman kube play -`.
            var inject = Podman.Run(BeemeshEnvironment.BeemeshPath, ["inject", "-f", "-", "--image", image, "--agent-dir", agentDir], stdin: manifests);
            output.WriteLine(inject.Out + inject.Err);
            Assert.Equal(0, inject.Exit);
            Assert.Empty(inject.Err);
            Assert.Contains("name: beemesh-sidecar", inject.Out, StringComparison.Ordinal);
            Assert.Contains($"name: web-{id}\nspec:\n  selector:", inject.Out, StringComparison.Ordinal); // the Service, untouched
            File.WriteAllText(injectedFile, inject.Out);

            // Idempotent through the published binary too.
            var again = Podman.Run(BeemeshEnvironment.BeemeshPath, ["inject", "-f", injectedFile, "--image", image, "--agent-dir", agentDir]);
            Assert.Equal(inject.Out, again.Out);

            var play = Podman.Run("podman", ["kube", "play", "--start=false", injectedFile]);
            output.WriteLine(play.Out + play.Err);
            Assert.True(play.Exit == 0, play.Err);
            for (int replica = 0; replica < 2; replica++)
            {
                string pod = $"web-{id}-pod-{replica}";
                var containers = Podman.Run("podman", ["ps", "-a", "--filter", $"pod={pod}", "--format", "{{.Names}}"]);
                Assert.Contains($"{pod}-app", containers.Out, StringComparison.Ordinal);
                Assert.Contains($"{pod}-beemesh-sidecar", containers.Out, StringComparison.Ordinal);

                var sidecar = Podman.Run("podman", ["inspect", $"{pod}-beemesh-sidecar", "--format",
                    "{{.Config.Entrypoint}} {{.Config.Cmd}}|{{range .Config.Env}}{{.}} {{end}}|{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}"]);
                output.WriteLine(sidecar.Out);
                Assert.Equal(0, sidecar.Exit);
                Assert.Contains("sidecar", sidecar.Out, StringComparison.Ordinal);
                Assert.Contains("--name web --namespace shop --inbound 15006 --agent /run/beemesh --port 8080/http", sidecar.Out.Replace("[", " ", StringComparison.Ordinal).Replace("]", " ", StringComparison.Ordinal), StringComparison.Ordinal);
                Assert.Contains($"BEEMESH_POD_NAME={pod} ", sidecar.Out, StringComparison.Ordinal);
                Assert.Contains($"{agentDir}:/run/beemesh", sidecar.Out, StringComparison.Ordinal);

                // The app container is the manifest's: same image and command, nothing of ours mounted.
                // (podman keeps a Kubernetes command as the container's entrypoint.)
                var app = Podman.Run("podman", ["inspect", $"{pod}-app", "--format", "{{.ImageName}} {{.Config.Entrypoint}} {{len .Mounts}}"]);
                Assert.Equal($"{image} sh -c sleep 1000 0", app.Out.Trim());
                Assert.DoesNotContain("/run/beemesh", Podman.Run("podman", ["inspect", $"{pod}-app"]).Out, StringComparison.Ordinal);
            }

            Assert.True(Podman.Run("podman", ["kube", "down", injectedFile]).Exit == 0);

            // --mesh-dns: the pod's DNS points at 127.0.0.1 (the sidecar refuses --dns until its resolver exists).
            var dns = Podman.Run(BeemeshEnvironment.BeemeshPath, ["inject", "-f", "-", "--image", image, "--agent-dir", agentDir, "--mesh-dns"], stdin: manifests);
            Assert.Equal(0, dns.Exit);
            File.WriteAllText(injectedFile, dns.Out);
            var playDns = Podman.Run("podman", ["kube", "play", "--start=false", injectedFile]);
            Assert.True(playDns.Exit == 0, playDns.Err);
            var infra = Podman.Run("podman", ["pod", "inspect", $"web-{id}-pod-0", "--format", "{{.InfraConfig.DNSServer}} {{.InfraConfig.DNSSearch}}"]);
            output.WriteLine(infra.Out);
            Assert.StartsWith("[127.0.0.1] [shop.svc.cluster.local svc.cluster.local cluster.local]", infra.Out, StringComparison.Ordinal);
        }
        finally
        {
            if (File.Exists(injectedFile))
            {
                Podman.Run("podman", ["kube", "down", injectedFile]);
            }

            Podman.Run("podman", ["rmi", "-f", image]);
            dir.Delete(recursive: true);
        }
    }

    [SkippableFact]
    public void PublishedCliRefusesBadInputWithOneLine()
    {
        Skip.If(BeemeshEnvironment.BinDirectory is null, "out/bin/beemesh is missing: run ./scripts/build");
        var bad = Podman.Run(BeemeshEnvironment.BeemeshPath, ["inject", "-f", "-"], stdin: "apiVersion: v1\nkind: Pod\nmetadata: {name: [x}\n");
        Assert.Equal(2, bad.Exit);
        Assert.Empty(bad.Out);
        Assert.StartsWith("beemesh inject: <stdin>:3:", bad.Err, StringComparison.Ordinal);
        Assert.Single(bad.Err.TrimEnd('\n').Split('\n'));

        var type = Podman.Run(BeemeshEnvironment.BeemeshPath, ["inject", "-f", "-"],
            stdin: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: two\n");
        Assert.Equal(2, type.Exit);
        Assert.StartsWith("beemesh inject: <stdin>:6:", type.Err, StringComparison.Ordinal);
        Assert.Contains("spec.replicas", type.Err, StringComparison.Ordinal);

        var flag = Podman.Run(BeemeshEnvironment.BeemeshPath, ["inject", "-f", "-", "--bogus"], stdin: "");
        Assert.NotEqual(0, flag.Exit);
        Assert.Contains("--bogus", flag.Err, StringComparison.Ordinal);
    }
}
