using k8s;
using k8s.Models;
using YamlDotNet.RepresentationModel;

namespace Beemesh.Inject;

/// <summary>What <see cref="AgentManifests"/> writes.</summary>
public sealed record AgentManifestOptions
{
    /// <summary>Image with the <c>beemesh</c> binary (the repository's Dockerfile builds it).</summary>
    public string Image { get; init; } = "localhost/beemesh:latest";

    /// <summary>Namespace of the agent's objects.</summary>
    public string Namespace { get; init; } = "beemesh-system";

    /// <summary>
    /// The agent's state directory on every node (a hostPath volume): its CA, node credentials and
    /// sockets. Injected pods mount it too (<c>beemesh inject --agent-dir</c> with the same path).
    /// </summary>
    public string AgentDirectory { get; init; } = "/var/lib/beemesh";

    /// <summary>Trust domain of the mesh.</summary>
    public string TrustDomain { get; init; } = "example.org";

    /// <summary>The node port (joins, overlay links) on each node's address.</summary>
    public int NodePort { get; init; } = 15010;

    /// <summary>The tunnel port (TCP, and UDP for QUIC) on each node's address.</summary>
    public int TunnelPort { get; init; } = 15008;

    /// <summary>
    /// <c>IP:PORT</c> of the first node's node port, which the other nodes join; null writes the
    /// first node's DaemonSet only (a mesh of that one node).
    /// </summary>
    public string? Join { get; init; }

    /// <summary>Where the joining agents find their one-time tokens: one file per node name, from the Secret <see cref="AgentManifests.JoinSecret"/>.</summary>
    public string JoinTokenDirectory { get; init; } = "/etc/beemesh/join";
}

/// <summary>
/// The Kubernetes objects that run the node agent on every node of a cluster, written with the
/// KubernetesClient models: a namespace, the agent's ServiceAccount (no API token: the agent does
/// not call the Kubernetes API, so it is given no role), and two DaemonSets on the host network:
/// one for the node labelled <see cref="FirstNodeLabel"/>, which holds the trust domain's root,
/// and one for every other node, which joins it once with a one-time token read from the Secret
/// <see cref="JoinSecret"/> (key: the node's name) and restarts from its saved credentials after that.
/// </summary>
public static class AgentManifests
{
    /// <summary>Label of the node whose agent holds the trust domain's root (value <c>"true"</c>).</summary>
    public const string FirstNodeLabel = "beemesh.io/first-node";

    /// <summary>Secret holding one join token per joining node, keyed by node name.</summary>
    public const string JoinSecret = "beemesh-join";

    /// <summary>Name of the ServiceAccount, and of the DaemonSet of the joining nodes.</summary>
    public const string AgentName = "beemesh-agent";

    /// <summary>Name of the DaemonSet of the first node.</summary>
    public const string FirstAgentName = "beemesh-agent-first";

    /// <summary>The manifests as multi-document YAML.</summary>
    public static string Generate(AgentManifestOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.Image))
        {
            throw new ArgumentException("the image is empty", nameof(options));
        }

        if (options.NodePort is < 1 or > 65535 || options.TunnelPort is < 1 or > 65535 || options.NodePort == options.TunnelPort)
        {
            throw new ArgumentException("the node port and the tunnel port must be two different ports of 1-65535", nameof(options));
        }

        if (!options.AgentDirectory.StartsWith('/'))
        {
            throw new ArgumentException($"the agent directory must be an absolute path, not '{options.AgentDirectory}'", nameof(options));
        }

        if (options.Join is not null && !System.Net.IPEndPoint.TryParse(options.Join, out _))
        {
            throw new ArgumentException($"--join must be IP:PORT of the first node's node port, not '{options.Join}'", nameof(options));
        }

        var documents = new List<YamlNode>
        {
            SidecarInjector.ToYaml(new V1Namespace
            {
                ApiVersion = "v1",
                Kind = "Namespace",
                Metadata = new V1ObjectMeta { Name = options.Namespace },
            }, InjectJsonContext.Default.V1Namespace),
            SidecarInjector.ToYaml(new V1ServiceAccount
            {
                ApiVersion = "v1",
                Kind = "ServiceAccount",
                Metadata = new V1ObjectMeta { Name = AgentName, NamespaceProperty = options.Namespace },
                AutomountServiceAccountToken = false,
            }, InjectJsonContext.Default.V1ServiceAccount),
            SidecarInjector.ToYaml(DaemonSet(options, first: true), InjectJsonContext.Default.V1DaemonSet),
        };
        if (options.Join is not null)
        {
            documents.Add(SidecarInjector.ToYaml(DaemonSet(options, first: false), InjectJsonContext.Default.V1DaemonSet));
        }

        return SidecarInjector.Write(documents);
    }

    /// <summary>
    /// The joining agent's start: the first start joins with the token the Secret holds for this
    /// node (and refuses to start without one: a node must never make a trust domain of its own);
    /// later starts reuse the node credentials saved in the state directory.
    /// </summary>
    public static string JoinScript(AgentManifestOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        string agent = AgentCommand(options);
        return $"""
            if [ -d {options.AgentDirectory}/node ]; then exec {agent}; fi
            token_file="{options.JoinTokenDirectory}/$NODE_NAME"
            if [ ! -s "$token_file" ]; then
              echo "beemesh agent: node $NODE_NAME has not joined yet and the secret {JoinSecret} holds no token for it (key $NODE_NAME)" >&2
              exit 1
            fi
            exec {agent} --join "$BEEMESH_JOIN" --token "$(cat "$token_file")"
            """;
    }

    private static string AgentCommand(AgentManifestOptions options) =>
        $"beemesh agent --state-dir {options.AgentDirectory} --trust-domain {options.TrustDomain} --node-name \"$NODE_NAME\" " +
        $"--listen \"$NODE_IP:{options.NodePort}\" --tunnel-port {options.TunnelPort}";

    private static V1DaemonSet DaemonSet(AgentManifestOptions options, bool first)
    {
        string name = first ? FirstAgentName : AgentName;
        var labels = new Dictionary<string, string> { ["app.kubernetes.io/name"] = name, ["app.kubernetes.io/part-of"] = "beemesh" };
        var env = new List<V1EnvVar>
        {
            new() { Name = "NODE_NAME", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "spec.nodeName" } } },
            new() { Name = "NODE_IP", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "status.hostIP" } } },
        };
        var mounts = new List<V1VolumeMount> { new() { Name = "state", MountPath = options.AgentDirectory } };
        var volumes = new List<V1Volume>
        {
            new() { Name = "state", HostPath = new V1HostPathVolumeSource { Path = options.AgentDirectory, Type = "DirectoryOrCreate" } },
        };
        if (!first)
        {
            env.Add(new V1EnvVar { Name = "BEEMESH_JOIN", Value = options.Join });
            mounts.Add(new V1VolumeMount { Name = "join", MountPath = options.JoinTokenDirectory, ReadOnlyProperty = true });
            volumes.Add(new V1Volume { Name = "join", Secret = new V1SecretVolumeSource { SecretName = JoinSecret, Optional = true, DefaultMode = 0x180 } });
        }

        var container = new V1Container
        {
            Name = "agent",
            Image = options.Image,
            ImagePullPolicy = "IfNotPresent",
            Command = first
                ? ["beemesh", "agent", "--state-dir", options.AgentDirectory, "--trust-domain", options.TrustDomain, "--node-name", "$(NODE_NAME)",
                    "--listen", $"$(NODE_IP):{options.NodePort}", "--tunnel-port", options.TunnelPort.ToString(System.Globalization.CultureInfo.InvariantCulture)]
                : ["/bin/sh", "-c", JoinScript(options)],
            Env = env,
            Ports =
            [
                new V1ContainerPort { Name = "node", ContainerPort = options.NodePort, HostPort = options.NodePort, Protocol = "TCP" },
                new V1ContainerPort { Name = "tunnel", ContainerPort = options.TunnelPort, HostPort = options.TunnelPort, Protocol = "TCP" },
                new V1ContainerPort { Name = "tunnel-quic", ContainerPort = options.TunnelPort, HostPort = options.TunnelPort, Protocol = "UDP" },
            ],
            VolumeMounts = mounts,
            // Root on the node: the agent reads every process's /proc entries (attestation, network
            // namespaces), including those of other users, and owns the state directory.
            SecurityContext = new V1SecurityContext
            {
                RunAsUser = 0,
                AllowPrivilegeEscalation = false,
                Capabilities = new V1Capabilities { Drop = ["ALL"], Add = ["SYS_PTRACE"] },
            },
        };
        var spec = new V1PodSpec
        {
            ServiceAccountName = AgentName,
            AutomountServiceAccountToken = false,
            HostNetwork = true,
            HostPID = true,
            DnsPolicy = "ClusterFirstWithHostNet",
            Containers = [container],
            Volumes = volumes,
            Tolerations = [new V1Toleration { OperatorProperty = "Exists" }],
        };
        if (first)
        {
            spec.NodeSelector = new Dictionary<string, string> { [FirstNodeLabel] = "true" };
        }
        else
        {
            spec.Affinity = new V1Affinity
            {
                NodeAffinity = new V1NodeAffinity
                {
                    RequiredDuringSchedulingIgnoredDuringExecution = new V1NodeSelector
                    {
                        NodeSelectorTerms = [new V1NodeSelectorTerm { MatchExpressions = [new V1NodeSelectorRequirement { Key = FirstNodeLabel, OperatorProperty = "DoesNotExist" }] }],
                    },
                },
            };
        }

        return new V1DaemonSet
        {
            ApiVersion = "apps/v1",
            Kind = "DaemonSet",
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = options.Namespace, Labels = labels },
            Spec = new V1DaemonSetSpec
            {
                Selector = new V1LabelSelector { MatchLabels = labels },
                // One agent per node at a time: the new one starts after the old one stopped (its sockets).
                UpdateStrategy = new V1DaemonSetUpdateStrategy { Type = "RollingUpdate", RollingUpdate = new V1RollingUpdateDaemonSet { MaxUnavailable = 1 } },
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta { Labels = labels },
                    Spec = spec,
                },
            },
        };
    }
}
