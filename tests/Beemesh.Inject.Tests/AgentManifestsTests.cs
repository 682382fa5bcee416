using System.Diagnostics;
using System.Text.Json;
using k8s;
using k8s.Models;
using YamlDotNet.RepresentationModel;

namespace Beemesh.Inject.Tests;

/// <summary><c>beemesh manifests</c>: the agent's DaemonSets read back with the KubernetesClient models.</summary>
public sealed class AgentManifestsTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("bm-manifests-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void WithoutJoinTheFirstNodesDaemonSetRunsTheAgentOnTheHostNetworkWithItsStateOnTheNode()
    {
        List<YamlMappingNode> documents = Documents(AgentManifests.Generate(new AgentManifestOptions { Image = "registry.example/beemesh:1.0", TrustDomain = "mesh.example" }));
        Assert.Equal(["Namespace", "ServiceAccount", "DaemonSet"], documents.Select(Kind));
        Assert.Equal("beemesh-system", Read(documents[0], SourceGenerationContext.Default.V1Namespace).Metadata.Name);

        // The agent does not call the Kubernetes API: no token, and no role.
        V1ServiceAccount account = Read(documents[1], SourceGenerationContext.Default.V1ServiceAccount);
        Assert.Equal(AgentManifests.AgentName, account.Metadata.Name);
        Assert.Equal("beemesh-system", account.Metadata.NamespaceProperty);
        Assert.False(account.AutomountServiceAccountToken);

        V1DaemonSet first = Read(documents[2], SourceGenerationContext.Default.V1DaemonSet);
        Assert.Equal(AgentManifests.FirstAgentName, first.Metadata.Name);
        Assert.Equal("apps/v1", first.ApiVersion);
        Assert.Equal(first.Spec.Selector.MatchLabels, first.Spec.Template.Metadata.Labels);
        V1PodSpec pod = first.Spec.Template.Spec;
        Assert.True(pod.HostNetwork);
        Assert.True(pod.HostPID);
        Assert.False(pod.AutomountServiceAccountToken);
        Assert.Equal(AgentManifests.AgentName, pod.ServiceAccountName);
        Assert.Equal("ClusterFirstWithHostNet", pod.DnsPolicy);
        Assert.Equal("true", pod.NodeSelector[AgentManifests.FirstNodeLabel]);

        V1Volume state = Assert.Single(pod.Volumes);
        Assert.Equal("/var/lib/beemesh", state.HostPath.Path);
        Assert.Equal("DirectoryOrCreate", state.HostPath.Type);
        V1Container agent = Assert.Single(pod.Containers);
        Assert.Equal("registry.example/beemesh:1.0", agent.Image);
        Assert.Equal("/var/lib/beemesh", agent.VolumeMounts.Single(m => m.Name == state.Name).MountPath);
        Assert.Equal(
            ["beemesh", "agent", "--state-dir", "/var/lib/beemesh", "--trust-domain", "mesh.example", "--node-name", "$(NODE_NAME)", "--listen", "$(NODE_IP):15010", "--tunnel-port", "15008"],
            agent.Command);
        Assert.Equal("spec.nodeName", agent.Env.Single(e => e.Name == "NODE_NAME").ValueFrom.FieldRef.FieldPath);
        Assert.Equal("status.hostIP", agent.Env.Single(e => e.Name == "NODE_IP").ValueFrom.FieldRef.FieldPath);
        Assert.Equal(
            ["node 15010/TCP host 15010", "tunnel 15008/TCP host 15008", "tunnel-quic 15008/UDP host 15008"],
            agent.Ports.Select(p => $"{p.Name} {p.ContainerPort}/{p.Protocol} host {p.HostPort}"));
        Assert.Equal(0, agent.SecurityContext.RunAsUser);
        Assert.False(agent.SecurityContext.AllowPrivilegeEscalation);
        Assert.Equal(["ALL"], agent.SecurityContext.Capabilities.Drop);
        Assert.Equal(["SYS_PTRACE"], agent.SecurityContext.Capabilities.Add);
    }

    [Fact]
    public void WithJoinTheOtherNodesJoinWithTheirTokenFromTheSecret()
    {
        var options = new AgentManifestOptions { Join = "10.0.0.1:15010", AgentDirectory = "/run/beemesh" };
        List<YamlMappingNode> documents = Documents(AgentManifests.Generate(options));
        Assert.Equal(["Namespace", "ServiceAccount", "DaemonSet", "DaemonSet"], documents.Select(Kind));
        V1DaemonSet others = Read(documents[3], SourceGenerationContext.Default.V1DaemonSet);
        Assert.Equal(AgentManifests.AgentName, others.Metadata.Name);
        V1PodSpec pod = others.Spec.Template.Spec;
        Assert.Null(pod.NodeSelector);
        V1NodeSelectorRequirement rule = Assert.Single(Assert.Single(pod.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms).MatchExpressions);
        Assert.Equal((AgentManifests.FirstNodeLabel, "DoesNotExist"), (rule.Key, rule.OperatorProperty));

        V1Volume join = pod.Volumes.Single(v => v.Secret is not null);
        Assert.Equal(AgentManifests.JoinSecret, join.Secret.SecretName);
        Assert.True(join.Secret.Optional);
        V1Container agent = Assert.Single(pod.Containers);
        Assert.Equal("/etc/beemesh/join", agent.VolumeMounts.Single(m => m.Name == join.Name).MountPath);
        Assert.Equal("/run/beemesh", pod.Volumes.Single(v => v.HostPath is not null).HostPath.Path);
        Assert.Equal("10.0.0.1:15010", agent.Env.Single(e => e.Name == "BEEMESH_JOIN").Value);
        Assert.Equal(["/bin/sh", "-c", AgentManifests.JoinScript(options)], agent.Command);
    }

    [SkippableFact]
    public void TheJoinScriptJoinsOnceWithTheNodesTokenAndRefusesToStartWithoutOne()
    {
        Skip.IfNot(File.Exists("/bin/sh"), "no /bin/sh");
        string state = Path.Combine(_root, "state");
        string tokens = Path.Combine(_root, "join");
        Directory.CreateDirectory(state);
        Directory.CreateDirectory(tokens);
        string bin = Path.Combine(_root, "bin");
        Directory.CreateDirectory(bin);
        // A stand-in for the agent that prints what it was started with.
        File.WriteAllText(Path.Combine(bin, "beemesh"), "#!/bin/sh\necho \"$@\"\n");
        File.SetUnixFileMode(Path.Combine(bin, "beemesh"), (UnixFileMode)0x1ED);
        string script = AgentManifests.JoinScript(new AgentManifestOptions { Join = "10.0.0.1:15010", AgentDirectory = state, JoinTokenDirectory = tokens });

        (int code, string output) = Sh(script, bin);
        Assert.Equal(1, code);
        Assert.Equal("beemesh agent: node node-2 has not joined yet and the secret beemesh-join holds no token for it (key node-2)\n", output);

        File.WriteAllText(Path.Combine(tokens, "node-2"), "bmt1.k3xq7mza.secret");
        (code, output) = Sh(script, bin);
        Assert.Equal(0, code);
        Assert.Equal($"agent --state-dir {state} --trust-domain example.org --node-name node-2 --listen 10.0.0.2:15010 --tunnel-port 15008 --join 10.0.0.1:15010 --token bmt1.k3xq7mza.secret\n", output);

        // Joined once (its credentials are saved): later starts take no token.
        Directory.CreateDirectory(Path.Combine(state, "node"));
        (code, output) = Sh(script, bin);
        Assert.Equal(0, code);
        Assert.Equal($"agent --state-dir {state} --trust-domain example.org --node-name node-2 --listen 10.0.0.2:15010 --tunnel-port 15008\n", output);
    }

    [Theory]
    [InlineData("", 15010, 15008, "/var/lib/beemesh", null, "the image is empty")]
    [InlineData("img", 15008, 15008, "/var/lib/beemesh", null, "two different ports")]
    [InlineData("img", 15010, 0, "/var/lib/beemesh", null, "two different ports")]
    [InlineData("img", 15010, 15008, "var/lib/beemesh", null, "absolute path")]
    [InlineData("img", 15010, 15008, "/var/lib/beemesh", "first-node", "IP:PORT")]
    public void BadOptionsAreRefusedWithTheReason(string image, int nodePort, int tunnelPort, string directory, string? join, string reason)
    {
        var e = Assert.Throws<ArgumentException>(() => AgentManifests.Generate(new AgentManifestOptions
        {
            Image = image, NodePort = nodePort, TunnelPort = tunnelPort, AgentDirectory = directory, Join = join,
        }));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    private static (int Code, string Output) Sh(string script, string bin)
    {
        var info = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(script);
        info.Environment["PATH"] = bin + ":/usr/bin:/bin";
        info.Environment["NODE_NAME"] = "node-2";
        info.Environment["NODE_IP"] = "10.0.0.2";
        info.Environment["BEEMESH_JOIN"] = "10.0.0.1:15010";
        using Process p = Process.Start(info)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output);
    }

    private static List<YamlMappingNode> Documents(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return [.. stream.Documents.Select(d => (YamlMappingNode)d.RootNode)];
    }

    private static string Kind(YamlMappingNode document) => ((YamlScalarNode)document["kind"]).Value!;

    private static T Read<T>(YamlMappingNode document, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) =>
        JsonSerializer.Deserialize(YamlJson.ToJson(document), type)!;
}
