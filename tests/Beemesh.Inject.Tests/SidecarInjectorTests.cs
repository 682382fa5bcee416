using System.Runtime.CompilerServices;
using YamlDotNet.RepresentationModel;

namespace Beemesh.Inject.Tests;

public sealed class SidecarInjectorTests
{
    private static readonly InjectOptions Options = new() { Image = "localhost/beemesh:test", Version = "test" };

    public static TheoryData<string> Kinds => ["pod", "deployment", "statefulset", "daemonset", "job", "list", "replicaset", "cronjob"];

    /// <summary>
    /// Each kind against a reviewed golden file. BEEMESH_UPDATE_GOLDEN=1 rewrites the golden files in
    /// the source tree instead (review the diff before committing).
    /// </summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public void GoldenOutputForEachKind(string kind)
    {
        string output = SidecarInjector.Inject(Input(kind), Options);
        string expectedPath = Path.Combine(AppContext.BaseDirectory, "Golden", kind + ".injected.yaml");
        if (Environment.GetEnvironmentVariable("BEEMESH_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(Path.Combine(SourceDirectory(), "Golden", kind + ".injected.yaml"), output);
            return;
        }

        Assert.Equal(File.ReadAllText(expectedPath), output);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void InjectingTwiceChangesNothing(string kind)
    {
        string once = SidecarInjector.Inject(Input(kind), Options);
        Assert.Equal(once, SidecarInjector.Inject(once, Options));
        Assert.Equal(once, SidecarInjector.Inject(once, Options with { Version = "other", Image = "elsewhere/beemesh:2" }));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void AppContainersAndOtherFieldsAreLeftExactlyAsTheyWere(string kind)
    {
        List<YamlMappingNode> before = PodSpecs(Input(kind));
        List<YamlMappingNode> after = PodSpecs(SidecarInjector.Inject(Input(kind), Options));
        Assert.Equal(before.Count, after.Count);
        Assert.NotEmpty(before);
        for (int i = 0; i < before.Count; i++)
        {
            var appBefore = (YamlSequenceNode)before[i]["containers"];
            var appAfter = (YamlSequenceNode)after[i]["containers"];
            Assert.Equal(appBefore.Children.Count + 1, appAfter.Children.Count);
            for (int c = 0; c < appBefore.Children.Count; c++)
            {
                // Every field as it was; env keeps the app's entries, in order, and gains Dapr's after them.
                var containerBefore = (YamlMappingNode)appBefore.Children[c];
                var containerAfter = (YamlMappingNode)appAfter.Children[c];
                Assert.Equal(
                    containerBefore.Children.Keys.Select(k => k.ToString()).Append("env").Distinct(),
                    containerAfter.Children.Keys.Select(k => k.ToString()));
                foreach (var (key, value) in containerBefore.Children)
                {
                    if (key.ToString() != "env")
                    {
                        Assert.Equal(Emit(value), Emit(containerAfter[key]));
                    }
                }

                var envBefore = containerBefore.Children.TryGetValue(new YamlScalarNode("env"), out YamlNode? e) ? ((YamlSequenceNode)e).Children : [];
                var envAfter = ((YamlSequenceNode)containerAfter["env"]).Children;
                Assert.Equal(envBefore.Select(Emit), envAfter.Take(envBefore.Count).Select(Emit));
                Assert.Equal(DaprNames, envAfter.Skip(envBefore.Count).Select(EnvName));
            }

            Assert.Equal(SidecarInjector.ContainerName, ((YamlScalarNode)((YamlMappingNode)appAfter.Children[^1])["name"]).Value);
            foreach (var (key, value) in before[i].Children)
            {
                if (key.ToString() is not ("volumes" or "containers"))
                {
                    Assert.Equal(Emit(value), Emit(after[i][key]));
                }
            }
        }
    }

    [Fact]
    public void AppContainersGetDaprsVariablesAsBeemeshRunGivesThem()
    {
        string output = SidecarInjector.Inject(Input("pod"), Options);
        YamlMappingNode spec = PodSpecs(output)[0];
        var containers = ((YamlSequenceNode)spec["containers"]).Children.Cast<YamlMappingNode>().ToList();
        foreach (YamlMappingNode app in containers.Where(c => c["name"].ToString() != SidecarInjector.ContainerName))
        {
            Dictionary<string, string> env = Env(app);
            // The app id is the sidecar's --name (the service account), which scopes the pod's keys.
            Assert.Equal("api", env["APP_ID"]);
            Assert.Equal("3500", env["DAPR_HTTP_PORT"]);
            Assert.Equal("50001", env["DAPR_GRPC_PORT"]);
            Assert.Equal("http://127.0.0.1:3500", env["DAPR_HTTP_ENDPOINT"]);
            Assert.Equal("http://127.0.0.1:50001", env["DAPR_GRPC_ENDPOINT"]);
        }

        // Written as strings, as Kubernetes requires for env values.
        Assert.Contains("value: \"3500\"", output, StringComparison.Ordinal);
        Assert.DoesNotContain("DAPR_HTTP_PORT", Emit(Sidecar(spec)), StringComparison.Ordinal);
    }

    [Fact]
    public void VariablesTheAppSetsWinAndSoDoTheirPairs()
    {
        const string yaml = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: web
            spec:
              initContainers:
              - name: migrate
                image: registry.example/migrate:1
              containers:
              - name: web
                image: registry.example/web:1
                env:
                - name: DAPR_HTTP_PORT
                  value: "3600"
                - name: APP_ID
                  valueFrom:
                    fieldRef:
                      fieldPath: metadata.name
              - name: grpc
                image: registry.example/grpc:1
                env: [{name: DAPR_GRPC_ENDPOINT, value: "http://127.0.0.1:50009"}]
              - name: configured
                image: registry.example/configured:1
                envFrom:
                - configMapRef:
                    name: settings
            """;
        string output = SidecarInjector.Inject(yaml, Options);
        var containers = ((YamlSequenceNode)PodSpecs(output)[0]["containers"]).Children.Cast<YamlMappingNode>().ToList();

        // The app's port wins, and it gets no endpoint either (the SDKs prefer an endpoint to a port).
        var web = ((YamlSequenceNode)containers[0]["env"]).Children;
        Assert.Equal(["DAPR_HTTP_PORT", "APP_ID", "DAPR_GRPC_PORT", "DAPR_GRPC_ENDPOINT"], web.Select(EnvName));
        Assert.Equal("3600", Env(containers[0])["DAPR_HTTP_PORT"]);
        Assert.Contains("fieldPath: metadata.name", Emit(web[1]), StringComparison.Ordinal);

        // A flow-style env list is extended in place; the app's gRPC endpoint wins and no port is added.
        Assert.Equal(["DAPR_GRPC_ENDPOINT", "APP_ID", "DAPR_HTTP_PORT", "DAPR_HTTP_ENDPOINT"], ((YamlSequenceNode)containers[1]["env"]).Children.Select(EnvName));
        Assert.Equal("http://127.0.0.1:50009", Env(containers[1])["DAPR_GRPC_ENDPOINT"]);

        // envFrom's ConfigMap is not in the manifest and an env entry would override it: nothing added.
        Assert.False(containers[2].Children.ContainsKey(new YamlScalarNode("env")));

        // Init containers run before the sidecar serves anything: left alone.
        var init = (YamlMappingNode)((YamlSequenceNode)PodSpecs(output)[0]["initContainers"]).Children[0];
        Assert.False(init.Children.ContainsKey(new YamlScalarNode("env")));

        Assert.Equal(output, SidecarInjector.Inject(output, Options));
    }

    [Fact]
    public void NodeLoopbackIsPassedToTheSidecarAndMustBeAnAddress()
    {
        var plain = ((YamlSequenceNode)Sidecar(PodSpecs(SidecarInjector.Inject(Input("pod"), Options))[0])["args"]).Children.Select(n => n.ToString()).ToList();
        Assert.DoesNotContain("--node-loopback", plain);
        string output = SidecarInjector.Inject(Input("pod"), Options with { NodeLoopback = "10.0.2.2" });
        var args = ((YamlSequenceNode)Sidecar(PodSpecs(output)[0])["args"]).Children.Select(n => n.ToString()).ToList();
        Assert.Equal("10.0.2.2", args[args.IndexOf("--node-loopback") + 1]);
        var bad = Assert.Throws<ArgumentException>(() => SidecarInjector.Inject(Input("pod"), Options with { NodeLoopback = "host.gateway" }));
        Assert.Contains("invalid --node-loopback 'host.gateway'", bad.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CronJobWithoutAJobTemplateGetsOneErrorWithThePosition()
    {
        var e = Assert.Throws<ManifestException>(() => SidecarInjector.Inject(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\nspec:\n  schedule: \"@daily\"\n", Options));
        Assert.Contains("CronJob nightly: spec.jobTemplate is missing", e.Message, StringComparison.Ordinal);
        var template = Assert.Throws<ManifestException>(() => SidecarInjector.Inject(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\nspec:\n  schedule: \"@daily\"\n  jobTemplate:\n    spec:\n      backoffLimit: 1\n", Options));
        Assert.Contains("CronJob nightly: spec.jobTemplate.spec.template is missing", template.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SidecarCarriesTheIdentityPortsAndAgentDirectory()
    {
        string output = SidecarInjector.Inject(Input("pod"), Options with { AgentDirectory = "/var/lib/beemesh-agent", InboundPort = 15100 });
        var sidecar = Sidecar(PodSpecs(output)[0]);
        Assert.Equal(
            ["--name", "api", "--namespace", "shop", "--inbound", "15100", "--agent", "/run/beemesh", "--port", "8080/http", "--port", "9090", "--port", "9100"],
            ((YamlSequenceNode)sidecar["args"]).Children.Select(n => ((YamlScalarNode)n).Value!));
        Assert.Equal(["beemesh", "sidecar"], ((YamlSequenceNode)sidecar["command"]).Children.Select(n => ((YamlScalarNode)n).Value!));
        Assert.Equal("localhost/beemesh:test", ((YamlScalarNode)sidecar["image"]).Value);
        Assert.Contains("path: /var/lib/beemesh-agent", output, StringComparison.Ordinal);
        Assert.Contains("fieldPath: metadata.name", output, StringComparison.Ordinal);
    }

    [Fact]
    public void ServiceAccountAndNamespaceDefaultsFollowKubernetes()
    {
        // No serviceAccountName: Kubernetes runs the pod as "default"; no namespace: the one given.
        string output = SidecarInjector.Inject(Input("statefulset"), Options with { DefaultNamespace = "data" });
        var args = ((YamlSequenceNode)Sidecar(PodSpecs(output)[0])["args"]).Children.Select(n => ((YamlScalarNode)n).Value!).ToList();
        Assert.Equal(["--name", "default", "--namespace", "data"], args[..4]);

        // The deprecated serviceAccount field is honoured when serviceAccountName is absent.
        string daemon = SidecarInjector.Inject(Input("daemonset"), Options);
        var daemonArgs = ((YamlSequenceNode)Sidecar(PodSpecs(daemon)[0])["args"]).Children.Select(n => ((YamlScalarNode)n).Value!).ToList();
        Assert.Equal(["--name", "shipper", "--namespace", "ops"], daemonArgs[..4]);
    }

    [Fact]
    public void OptOutAnnotationLeavesThePodAlone()
    {
        string yaml = Input("deployment").Replace("prometheus.io/scrape: 'true'", "beemesh.io/inject: \"false\"", StringComparison.Ordinal);
        string output = SidecarInjector.Inject(yaml, Options);
        Assert.DoesNotContain(SidecarInjector.ContainerName, output, StringComparison.Ordinal);
        Assert.DoesNotContain(SidecarInjector.InjectedAnnotation, output, StringComparison.Ordinal);
        Assert.Equal(Emit(PodSpecs(yaml)[0]), Emit(PodSpecs(output)[0]));

        // Any other value injects.
        string yes = SidecarInjector.Inject(yaml.Replace("\"false\"", "\"true\"", StringComparison.Ordinal), Options);
        Assert.Contains(SidecarInjector.ContainerName, yes, StringComparison.Ordinal);
    }

    [Fact]
    public void PortsAnnotationAddsMeshPortsWithoutAContainerPortAndBadOnesAreRefused()
    {
        string plain = SidecarInjector.Inject(Input("deployment"), Options);
        List<string> before = SidecarArgs(plain);
        string yaml = Input("deployment").Replace("prometheus.io/scrape: 'true'", "beemesh.io/ports: \"9000/http, 9100 9000/http\"", StringComparison.Ordinal);
        List<string> after = SidecarArgs(SidecarInjector.Inject(yaml, Options));
        Assert.Equal([.. before, "--port", "9000/http", "--port", "9100"], after);

        foreach (string bad in new[] { "9000/udp", "x", "70000", "15006" })
        {
            string wrong = Input("deployment").Replace("prometheus.io/scrape: 'true'", $"beemesh.io/ports: \"{bad}\"", StringComparison.Ordinal);
            var e = Assert.Throws<ManifestException>(() => SidecarInjector.Inject(wrong, Options));
            Assert.Contains(SidecarInjector.PortsAnnotation, e.Message, StringComparison.Ordinal);
        }
    }

    private static List<string> SidecarArgs(string output) =>
        [.. ((YamlSequenceNode)Sidecar(PodSpecs(output)[0])["args"]).Children.Select(n => ((YamlScalarNode)n).Value!)];

    [Fact]
    public void HostNetworkPodsAreLeftAlone()
    {
        string yaml = Input("job").Replace("restartPolicy: Never", "restartPolicy: Never\n      hostNetwork: true", StringComparison.Ordinal);
        Assert.DoesNotContain(SidecarInjector.ContainerName, SidecarInjector.Inject(yaml, Options), StringComparison.Ordinal);
    }

    [Fact]
    public void MultiDocumentInputKeepsOrderAndPassesOtherKindsThrough()
    {
        string configMap = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  enabled: \"true\"\n  port: '8080'\n  raw: |\n    line one\n    line two\n";
        string yaml = Input("pod") + "---\n" + configMap + "---\n" + Input("job") + "---\n";
        string output = SidecarInjector.Inject(yaml, Options);
        string[] documents = output.Split("---\n");
        Assert.Equal(3, documents.Length);
        Assert.Contains("kind: Pod", documents[0], StringComparison.Ordinal);
        Assert.Equal(configMap, documents[1]);
        Assert.Contains("kind: Job", documents[2], StringComparison.Ordinal);
        Assert.Equal(2, PodSpecs(output).Count(s => s.Children.ContainsKey("containers") && Sidecar(s) is not null));
    }

    [Fact]
    public void MeshDnsPointsThePodAtTheSidecarsResolver()
    {
        string output = SidecarInjector.Inject(Input("deployment"), Options with { MeshDns = true });
        YamlMappingNode spec = PodSpecs(output)[0];
        Assert.Equal("None", spec["dnsPolicy"].ToString());
        var dns = (YamlMappingNode)spec["dnsConfig"];
        Assert.Equal(["127.0.0.1"], ((YamlSequenceNode)dns["nameservers"]).Children.Select(n => n.ToString()));
        Assert.Equal(["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"], ((YamlSequenceNode)dns["searches"]).Children.Select(n => n.ToString()));
        var args = ((YamlSequenceNode)Sidecar(spec)["args"]).Children.Select(n => n.ToString()).ToList();
        Assert.Equal("127.0.0.1:53", args[args.IndexOf("--dns") + 1]);
        Assert.Equal("10.0.2.3", args[args.IndexOf("--dns-upstream") + 1]);
        var capabilities = (YamlMappingNode)((YamlMappingNode)Sidecar(spec)["securityContext"])["capabilities"];
        Assert.Equal(["NET_BIND_SERVICE"], ((YamlSequenceNode)capabilities["add"]).Children.Select(n => n.ToString())); // port 53
        Assert.Equal(["ALL"], ((YamlSequenceNode)capabilities["drop"]).Children.Select(n => n.ToString()));
        string cluster = SidecarInjector.Inject(Input("deployment"), Options with { MeshDns = true, DnsUpstream = "10.96.0.10" });
        var clusterArgs = ((YamlSequenceNode)Sidecar(PodSpecs(cluster)[0])["args"]).Children.Select(n => n.ToString()).ToList();
        Assert.Equal("10.96.0.10", clusterArgs[clusterArgs.IndexOf("--dns-upstream") + 1]);
        Assert.Throws<ArgumentException>(() => SidecarInjector.Inject(Input("deployment"), Options with { MeshDns = true, DnsUpstream = "kube-dns" }));

        Assert.DoesNotContain("dnsConfig", SidecarInjector.Inject(Input("deployment"), Options), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void OutputStaysWithinPodmanKubePlayLimits(string kind)
    {
        string output = SidecarInjector.Inject(Input(kind), Options with { MeshDns = true });
        var stream = new YamlStream();
        stream.Load(new StringReader(output));
        foreach (YamlNode node in stream.Documents.SelectMany(d => d.AllNodes))
        {
            if (node is not YamlMappingNode map)
            {
                continue;
            }

            if (map.Children.TryGetValue(new YamlScalarNode("annotations"), out YamlNode? annotations))
            {
                Assert.All(((YamlMappingNode)annotations).Children.Values, v => Assert.True(v.ToString().Length <= 63, v.ToString()));
            }

            if (map.Children.TryGetValue(new YamlScalarNode("fieldRef"), out YamlNode? fieldRef))
            {
                Assert.Contains(((YamlMappingNode)fieldRef)["fieldPath"].ToString(), new[] { "metadata.name", "metadata.uid" });
            }

            if (map.Children.TryGetValue(new YamlScalarNode("volumes"), out YamlNode? volumes))
            {
                foreach (YamlMappingNode volume in ((YamlSequenceNode)volumes).Children.Cast<YamlMappingNode>())
                {
                    Assert.Contains(volume.Children.Keys.Select(k => k.ToString()), k => k is "hostPath" or "emptyDir" or "configMap");
                }
            }
        }
    }

    [Fact]
    public void InvalidYamlIsRefusedWithItsPosition()
    {
        var e = Assert.Throws<ManifestException>(() => SidecarInjector.Inject("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [a\nspec: {}\n", Options));
        Assert.Equal("YAML syntax error: the input cannot be parsed past this point", e.Message);
        Assert.Equal((4L, 9L), (e.Line, e.Column)); // the "[" that never closes, the last thing that parsed

        var unclosed = Assert.Throws<ManifestException>(() => SidecarInjector.Inject("kind: Pod\nspec: [a\n", Options));
        Assert.Equal("YAML syntax error: While parsing a flow sequence, did not find expected ',' or ']'.", unclosed.Message);
        Assert.Equal((3L, 1L), (unclosed.Line, unclosed.Column));

        var indent = Assert.Throws<ManifestException>(() => SidecarInjector.Inject("kind: Pod\n  spec: x\n", Options));
        Assert.Equal((2L, 7L), (indent.Line, indent.Column));
    }

    [Fact]
    public void FieldOfTheWrongTypeIsRefusedAtItsLine()
    {
        string yaml = Input("deployment").Replace("containerPort: 80", "containerPort: eighty", StringComparison.Ordinal);
        var e = Assert.Throws<ManifestException>(() => SidecarInjector.Inject(yaml, Options));
        int line = Array.FindIndex(yaml.Split('\n'), l => l.Contains("eighty", StringComparison.Ordinal)) + 1;
        Assert.Equal(line, e.Line);
        Assert.StartsWith("Deployment web: spec.template.spec.containers[0].ports[0].containerPort: ", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("- just\n- a list\n", "a Kubernetes object must be a mapping")]
    [InlineData("apiVersion: v1\nmetadata:\n  name: x\n", "the object has no kind")]
    [InlineData("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: 1\n", "Deployment x: spec.template is missing")]
    [InlineData("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers: []\n", "the pod template has no containers")]
    [InlineData("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  serviceAccountName: a.b\n  containers:\n  - name: c\n    image: i\n", "serviceAccountName")]
    [InlineData("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: c\n    image: i\n    ports:\n    - containerPort: 15006\n", "the sidecar's inbound port")]
    [InlineData("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: c\n    image: i\n  volumes:\n  - name: beemesh-agent\n    emptyDir: {}\n", "already has a volume named beemesh-agent")]
    public void PodsTheSidecarCannotServeAreRefused(string yaml, string message)
    {
        var e = Assert.Throws<ManifestException>(() => SidecarInjector.Inject(yaml, Options));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.True(e.Line >= 1);
    }

    [Fact]
    public void BadOptionsAreRefused()
    {
        Assert.Throws<ArgumentException>(() => SidecarInjector.Inject("", Options with { Version = new string('v', 64) }));
        Assert.Throws<ArgumentException>(() => SidecarInjector.Inject("", Options with { InboundPort = 0 }));
        Assert.Throws<ArgumentException>(() => SidecarInjector.Inject("", Options with { AgentDirectory = "relative/dir" }));
        Assert.Throws<ArgumentException>(() => SidecarInjector.Inject("", Options with { DefaultNamespace = "Not_A_Label" }));
        Assert.Equal(string.Empty, SidecarInjector.Inject("", Options));
    }

    private static readonly string[] DaprNames = ["APP_ID", "DAPR_HTTP_PORT", "DAPR_GRPC_PORT", "DAPR_HTTP_ENDPOINT", "DAPR_GRPC_ENDPOINT"];

    private static string EnvName(YamlNode entry) => ((YamlMappingNode)entry)["name"].ToString();

    private static Dictionary<string, string> Env(YamlMappingNode container) =>
        ((YamlSequenceNode)container["env"]).Children.Cast<YamlMappingNode>()
            .Where(e => e.Children.ContainsKey(new YamlScalarNode("value")))
            .ToDictionary(e => e["name"].ToString(), e => e["value"].ToString());

    private static string Input(string kind) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Golden", kind + ".yaml"));

    private static string SourceDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;

    /// <summary>Every pod spec in the documents, in order (a List's items included).</summary>
    private static List<YamlMappingNode> PodSpecs(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var specs = new List<YamlMappingNode>();
        foreach (YamlDocument d in stream.Documents)
        {
            Collect(d.RootNode, specs);
        }

        return specs;
    }

    private static void Collect(YamlNode node, List<YamlMappingNode> specs)
    {
        if (node is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode("kind"), out YamlNode? kind))
        {
            return;
        }

        switch (kind.ToString())
        {
            case "List":
                foreach (YamlNode item in ((YamlSequenceNode)map["items"]).Children)
                {
                    Collect(item, specs);
                }

                break;
            case "Pod":
                specs.Add((YamlMappingNode)map["spec"]);
                break;
            case "Deployment" or "StatefulSet" or "DaemonSet" or "ReplicaSet" or "Job":
                specs.Add((YamlMappingNode)((YamlMappingNode)((YamlMappingNode)map["spec"])["template"])["spec"]);
                break;
            case "CronJob":
                var jobSpec = (YamlMappingNode)((YamlMappingNode)((YamlMappingNode)map["spec"])["jobTemplate"])["spec"];
                specs.Add((YamlMappingNode)((YamlMappingNode)jobSpec["template"])["spec"]);
                break;
        }
    }

    private static YamlMappingNode Sidecar(YamlMappingNode spec) =>
        ((YamlSequenceNode)spec["containers"]).Children.Cast<YamlMappingNode>().Single(c => c["name"].ToString() == SidecarInjector.ContainerName);

    private static string Emit(YamlNode node)
    {
        var writer = new StringWriter();
        new YamlStream(new YamlDocument(node)).Save(writer, assignAnchors: false);
        return writer.ToString();
    }
}
