using System.Text.Json;
using System.Text.Json.Nodes;
using Beemesh.Authorization;
using Beemesh.State.Api;
using k8s;
using k8s.Models;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Beemesh.Inject;

/// <summary>
/// <c>beemesh inject</c>'s transform: adds a <c>beemesh-sidecar</c> container to the pod template of
/// every Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob (also inside a v1 List), in the manner of
/// <c>istioctl kube-inject</c>. Each object is read with the Kubernetes models (which checks its
/// fields' types); the edit is made on the YAML tree, so every field the sidecar does not need —
/// the app's containers above all — is written back exactly as it was read (comments aside).
/// Other kinds pass through untouched. Injecting twice changes nothing; a pod template annotated
/// <c>beemesh.io/inject: "false"</c> is left alone, as is a host-network pod (it has no network
/// of its own to share with a sidecar).
/// </summary>
public static class SidecarInjector
{
    /// <summary>Name of the added container.</summary>
    public const string ContainerName = "beemesh-sidecar";

    /// <summary>Pod-template annotation that opts a pod out with the value <c>"false"</c>.</summary>
    public const string InjectAnnotation = "beemesh.io/inject";

    /// <summary>
    /// Pod template annotation listing ports the sidecar serves to the mesh besides the containers'
    /// TCP <c>containerPort</c>s: <c>"8080/http, 9000"</c> (each <c>PORT</c>, <c>PORT/tcp</c> or <c>PORT/http</c>).
    /// </summary>
    public const string PortsAnnotation = "beemesh.io/ports";

    /// <summary>Pod-template annotation that records an injection (its value: <see cref="InjectOptions.Version"/>).</summary>
    public const string InjectedAnnotation = "beemesh.io/injected";

    /// <summary>Name of the hostPath volume that carries the node agent's directory.</summary>
    public const string AgentVolumeName = "beemesh-agent";

    /// <summary>Where the agent's directory is mounted inside the sidecar container.</summary>
    public const string AgentMountPath = "/run/beemesh";

    /// <summary>
    /// The pod's name, which the sidecar gets from the downward API (fieldRef metadata.name). The
    /// namespace is passed as an argument instead: podman 4.3's kube play refuses fieldRef
    /// metadata.namespace ("either not valid or not supported"); it knows metadata.name and uid only.
    /// </summary>
    public const string PodNameVariable = "BEEMESH_POD_NAME";

    /// <summary>The sidecar's DNS resolver address inside the pod, with <see cref="InjectOptions.MeshDns"/>.</summary>
    public const string ResolverAddress = "127.0.0.1";

    /// <summary>Podman 4.3's <c>kube play</c> refuses longer annotation values.</summary>
    public const int MaxAnnotationValueLength = 63;

    /// <summary>
    /// Injects every pod template of the (multi-document) YAML <paramref name="yaml"/> and returns the
    /// result; throws <see cref="ManifestException"/> with the input position for bad input.
    /// </summary>
    public static string Inject(string yaml, InjectOptions options)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        ArgumentNullException.ThrowIfNull(options);
        CheckOptions(options);
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new ManifestException(e.Start, "YAML syntax error: " + Describe(e));
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException)
        {
            // YamlDotNet reports some malformed input (an unclosed flow collection followed by more
            // mappings) with a plain .NET exception and no position: the end of the last event that
            // parsed is the best place we know.
            _ = e;
            throw new ManifestException(LastParsedMark(yaml), "YAML syntax error: the input cannot be parsed past this point");
        }

        var documents = new List<YamlNode>();
        foreach (YamlDocument document in stream.Documents)
        {
            if (document.RootNode is YamlScalarNode { Value: null or "" } empty && empty.Style is ScalarStyle.Plain or ScalarStyle.Any)
            {
                continue; // an empty document, e.g. after a trailing "---"
            }

            InjectObject(document.RootNode, options);
            documents.Add(document.RootNode);
        }

        return Write(documents);
    }

    private static Mark LastParsedMark(string yaml)
    {
        var parser = new Parser(new StringReader(yaml));
        Mark last = Mark.Empty;
        try
        {
            while (parser.MoveNext())
            {
                last = parser.Current!.End;
            }
        }
        catch (Exception e) when (e is YamlException or InvalidOperationException or ArgumentException or FormatException)
        {
        }

        return last;
    }

    private static void CheckOptions(InjectOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.Image))
        {
            throw new ArgumentException("the sidecar image is empty", nameof(options));
        }

        if (options.InboundPort is < 1 or > 65535)
        {
            throw new ArgumentException($"invalid inbound port {options.InboundPort}: ports are 1-65535", nameof(options));
        }

        if (!options.AgentDirectory.StartsWith('/'))
        {
            throw new ArgumentException($"the agent directory must be an absolute path: '{options.AgentDirectory}'", nameof(options));
        }

        if (options.Version.Length is 0 or > MaxAnnotationValueLength)
        {
            throw new ArgumentException($"the injection annotation's value must be 1-{MaxAnnotationValueLength} characters", nameof(options));
        }

        if (!System.Net.IPAddress.TryParse(options.DnsUpstream, out _) && !System.Net.IPEndPoint.TryParse(options.DnsUpstream, out _))
        {
            throw new ArgumentException($"invalid --dns-upstream '{options.DnsUpstream}': expected ADDRESS[:PORT]", nameof(options));
        }

        if (options.NodeLoopback is { } loopback && !System.Net.IPAddress.TryParse(loopback, out _))
        {
            throw new ArgumentException($"invalid --node-loopback '{loopback}': expected an IP address", nameof(options));
        }

        if (options.SidecarUser is < 0 or > uint.MaxValue - 1)
        {
            throw new ArgumentException($"invalid --sidecar-uid {options.SidecarUser}", nameof(options));
        }

        if (KubernetesNames.CheckLabel("--namespace", options.DefaultNamespace) is { } bad)
        {
            throw new ArgumentException(bad, nameof(options));
        }
    }

    private static void InjectObject(YamlNode node, InjectOptions options)
    {
        if (node is not YamlMappingNode root)
        {
            throw new ManifestException(node.Start, "a Kubernetes object must be a mapping");
        }

        string? kind = YamlJson.StringValue(Child(root, "kind"));
        if (kind is null)
        {
            throw new ManifestException(root.Start, "the object has no kind");
        }

        switch (kind)
        {
            case "List":
                // A v1 List (as kubectl get -o yaml writes): each item is an object of its own.
                if (Child(root, "items") is YamlSequenceNode items)
                {
                    foreach (YamlNode item in items.Children)
                    {
                        InjectObject(item, options);
                    }
                }

                break;
            case "Pod":
                var pod = Read(root, InjectJsonContext.Default.V1Pod, kind);
                InjectTemplate(root, pod.Metadata, new V1PodTemplateSpec { Metadata = pod.Metadata, Spec = pod.Spec }, options);
                break;
            case "Deployment":
                var deployment = Read(root, InjectJsonContext.Default.V1Deployment, kind);
                InjectTemplate(TemplateNode(root, kind), deployment.Metadata, deployment.Spec?.Template, options);
                break;
            case "StatefulSet":
                var statefulSet = Read(root, InjectJsonContext.Default.V1StatefulSet, kind);
                InjectTemplate(TemplateNode(root, kind), statefulSet.Metadata, statefulSet.Spec?.Template, options);
                break;
            case "DaemonSet":
                var daemonSet = Read(root, InjectJsonContext.Default.V1DaemonSet, kind);
                InjectTemplate(TemplateNode(root, kind), daemonSet.Metadata, daemonSet.Spec?.Template, options);
                break;
            case "Job":
                var job = Read(root, InjectJsonContext.Default.V1Job, kind);
                InjectTemplate(TemplateNode(root, kind), job.Metadata, job.Spec?.Template, options);
                break;
            case "ReplicaSet":
                var replicaSet = Read(root, InjectJsonContext.Default.V1ReplicaSet, kind);
                InjectTemplate(TemplateNode(root, kind), replicaSet.Metadata, replicaSet.Spec?.Template, options);
                break;
            case "CronJob":
                // The pod template is one level down: spec.jobTemplate.spec.template.
                var cronJob = Read(root, InjectJsonContext.Default.V1CronJob, kind);
                YamlMappingNode jobTemplate = Child(root, "spec") is YamlMappingNode cronSpec && Child(cronSpec, "jobTemplate") is YamlMappingNode jt
                    ? jt
                    : throw new ManifestException(root.Start, $"CronJob {YamlJson.StringValue(Child(Child(root, "metadata"), "name"))}: spec.jobTemplate is missing");
                InjectTemplate(TemplateNode(jobTemplate, kind, "spec.jobTemplate.spec.template", root), cronJob.Metadata, cronJob.Spec?.JobTemplate?.Spec?.Template, options);
                break;
            default:
                break; // other kinds pass through untouched
        }
    }

    private static YamlMappingNode TemplateNode(YamlMappingNode parent, string kind, string path = "spec.template", YamlMappingNode? root = null) =>
        Child(parent, "spec") is YamlMappingNode spec && Child(spec, "template") is YamlMappingNode template
            ? template
            : throw new ManifestException(parent.Start, $"{kind} {YamlJson.StringValue(Child(Child(root ?? parent, "metadata"), "name"))}: {path} is missing");

    private static void InjectTemplate(YamlMappingNode templateNode, V1ObjectMeta? objectMeta, V1PodTemplateSpec? template, InjectOptions options)
    {
        V1PodSpec spec = template?.Spec ?? throw new ManifestException(templateNode.Start, "the pod template has no spec");
        IDictionary<string, string>? annotations = template.Metadata?.Annotations;
        if (annotations is not null
            && (annotations.ContainsKey(InjectedAnnotation)
                || (annotations.TryGetValue(InjectAnnotation, out string? inject) && string.Equals(inject, "false", StringComparison.OrdinalIgnoreCase))))
        {
            return;
        }

        if (spec.Containers is not { Count: > 0 })
        {
            throw new ManifestException(templateNode.Start, "the pod template has no containers");
        }

        if (spec.Containers.Any(c => c.Name == ContainerName))
        {
            return;
        }

        if (spec.HostNetwork == true)
        {
            return;
        }

        var specNode = (YamlMappingNode)Child(templateNode, "spec")!;
        string serviceAccount = spec.ServiceAccountName ?? spec.ServiceAccount ?? "default";
        if (KubernetesNames.CheckLabel("serviceAccountName", serviceAccount) is { } badAccount)
        {
            throw new ManifestException(Position(specNode, "serviceAccountName"), badAccount + " (the sidecar's identity is spiffe://TD/ns/NAMESPACE/sa/SERVICEACCOUNT)");
        }

        string ns = objectMeta?.NamespaceProperty ?? options.DefaultNamespace;
        if (objectMeta?.NamespaceProperty is { } declared && KubernetesNames.CheckLabel("metadata.namespace", declared) is { } badNs)
        {
            throw new ManifestException(templateNode.Start, badNs);
        }

        if (spec.Volumes?.Any(v => v.Name == AgentVolumeName) == true)
        {
            throw new ManifestException(Position(specNode, "volumes"), $"the pod already has a volume named {AgentVolumeName}");
        }

        var ports = new List<string>();
        foreach (V1Container container in spec.Containers)
        {
            foreach (V1ContainerPort port in container.Ports ?? [])
            {
                if (port.Protocol is not (null or "TCP"))
                {
                    continue; // the sidecar serves TCP; UDP and SCTP ports stay the app's own
                }

                if (port.ContainerPort == options.InboundPort)
                {
                    throw new ManifestException(Position(specNode, "containers"),
                        $"container {container.Name} declares port {port.ContainerPort}, the sidecar's inbound port; choose another with --inbound");
                }

                bool http = port.Name is "http" || port.Name?.StartsWith("http-", StringComparison.Ordinal) == true;
                string text = http ? $"{port.ContainerPort}/http" : port.ContainerPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
                if (!ports.Contains(text))
                {
                    ports.Add(text);
                }
            }
        }

        // Ports served to the mesh without a containerPort: podman 4.3's kube play publishes every
        // containerPort on the host, so the replicas of one template would collide on it.
        if (annotations is not null && annotations.TryGetValue(PortsAnnotation, out string? extra))
        {
            foreach (string item in extra.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries))
            {
                string[] parts = item.Split('/');
                if (parts.Length > 2 || !int.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int number)
                    || number is < 1 or > 65535 || (parts.Length == 2 && parts[1] is not ("tcp" or "http")))
                {
                    throw new ManifestException(templateNode.Start, $"annotation {PortsAnnotation}: '{item}' is not PORT, PORT/tcp or PORT/http");
                }

                if (number == options.InboundPort)
                {
                    throw new ManifestException(templateNode.Start, $"annotation {PortsAnnotation} names port {number}, the sidecar's inbound port; choose another with --inbound");
                }

                string text = parts.Length == 2 && parts[1] == "http" ? $"{number}/http" : number.ToString(System.Globalization.CultureInfo.InvariantCulture);
                if (!ports.Contains(text))
                {
                    ports.Add(text);
                }
            }
        }

        YamlSequenceNode containerNodes = Sequence(specNode, "containers");
        for (int i = 0; i < spec.Containers.Count; i++)
        {
            if (containerNodes.Children[i] is YamlMappingNode containerNode)
            {
                AddDaprEnvironment(containerNode, spec.Containers[i], serviceAccount);
            }
        }

        containerNodes.Add(ToYaml(Sidecar(serviceAccount, ns, ports, options), InjectJsonContext.Default.V1Container));
        Sequence(specNode, "volumes").Add(ToYaml(new V1Volume
        {
            Name = AgentVolumeName,
            HostPath = new V1HostPathVolumeSource { Path = options.AgentDirectory, Type = "Directory" },
        }, InjectJsonContext.Default.V1Volume));
        if (options.MeshDns)
        {
            specNode.Children[new YamlScalarNode("dnsPolicy")] = YamlJson.StringScalar("None");
            List<string> searches = [$"{ns}.svc.cluster.local", "svc.cluster.local", "cluster.local"];
            specNode.Children[new YamlScalarNode("dnsConfig")] = ToYaml(new V1PodDNSConfig
            {
                Nameservers = [ResolverAddress],
                Searches = searches,
                Options = [new V1PodDNSConfigOption { Name = "ndots", Value = "5" }],
            }, InjectJsonContext.Default.V1PodDNSConfig);
        }

        if (Child(templateNode, "metadata") is not YamlMappingNode metadata)
        {
            metadata = new YamlMappingNode();
            templateNode.Children[new YamlScalarNode("metadata")] = metadata;
        }

        if (Child(metadata, "annotations") is not YamlMappingNode annotationNode)
        {
            annotationNode = new YamlMappingNode();
            metadata.Children[new YamlScalarNode("annotations")] = annotationNode;
        }

        annotationNode.Children[new YamlScalarNode(InjectedAnnotation)] = YamlJson.StringScalar(options.Version);
    }

    /// <summary>
    /// Appends to an app container's <c>env</c> the variables Dapr's SDKs read to find the state API
    /// the sidecar serves on the pod's loopback (<see cref="DaprEnvironment"/>, as <c>beemesh run</c>
    /// gives its command), leaving every entry the container declares as it was. A variable the
    /// container sets itself wins, and so does its pair: an app that sets <c>DAPR_HTTP_PORT</c> does
    /// not get <c>DAPR_HTTP_ENDPOINT</c> either (the SDKs prefer the endpoint, which would override
    /// the port the app chose); likewise for gRPC. A container with <c>envFrom</c> gets none of them:
    /// what a ConfigMap or Secret holds is not in the manifest, and an <c>env</c> entry would
    /// override a value of the same name it gives (the SDKs' defaults, 127.0.0.1:3500 and :50001, still find the API).
    /// </summary>
    private static void AddDaprEnvironment(YamlMappingNode containerNode, V1Container container, string appId)
    {
        if (container.EnvFrom is { Count: > 0 })
        {
            return;
        }

        var declared = new HashSet<string>(StringComparer.Ordinal);
        foreach (V1EnvVar variable in container.Env ?? [])
        {
            if (variable.Name is { } name)
            {
                declared.Add(DaprVariableGroup(name));
            }
        }

        var added = new List<YamlNode>();
        foreach (var (name, value) in DaprEnvironment.For(appId))
        {
            if (!declared.Contains(DaprVariableGroup(name)))
            {
                added.Add(new YamlMappingNode { { "name", YamlJson.StringScalar(name) }, { "value", YamlJson.StringScalar(value) } });
            }
        }

        if (added.Count > 0)
        {
            YamlSequenceNode env = Sequence(containerNode, "env");
            foreach (YamlNode entry in added)
            {
                env.Add(entry);
            }
        }
    }

    // DAPR_HTTP_PORT and DAPR_HTTP_ENDPOINT name one setting (so do the gRPC pair); others stand alone.
    private static string DaprVariableGroup(string name) =>
        name.StartsWith("DAPR_", StringComparison.Ordinal) && name.EndsWith("_PORT", StringComparison.Ordinal) ? name[..^"_PORT".Length]
        : name.StartsWith("DAPR_", StringComparison.Ordinal) && name.EndsWith("_ENDPOINT", StringComparison.Ordinal) ? name[..^"_ENDPOINT".Length]
        : name;

    private static V1Container Sidecar(string serviceAccount, string ns, List<string> ports, InjectOptions options)
    {
        var args = new List<string> { "--name", serviceAccount, "--namespace", ns };
        args.AddRange(["--inbound", options.InboundPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--agent", AgentMountPath]);
        foreach (string port in ports)
        {
            args.AddRange(["--port", port]);
        }

        if (options.MeshDns)
        {
            args.AddRange(["--dns", ResolverAddress + ":53", "--dns-upstream", options.DnsUpstream]);
        }

        if (options.NodeLoopback is { } nodeLoopback)
        {
            args.AddRange(["--node-loopback", nodeLoopback]);
        }

        return new V1Container
        {
            Name = ContainerName,
            Image = options.Image,
            ImagePullPolicy = "IfNotPresent",
            Command = ["beemesh", "sidecar"],
            Args = args,
            Env =
            [
                new V1EnvVar { Name = PodNameVariable, ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "metadata.name" } } },
            ],
            VolumeMounts = [new V1VolumeMount { Name = AgentVolumeName, MountPath = AgentMountPath }],
            // The sidecar calls the agent's admin API (a 0600 socket in a 0700 directory), so it runs as
            // the agent's owner: uid 0 of the pod, which rootless podman maps to the user running podman
            // (and the agent). Every capability is dropped; with --mesh-dns it keeps NET_BIND_SERVICE
            // alone, to serve DNS on port 53 (podman 4.3 ignores the pod's sysctls, so
            // net.ipv4.ip_unprivileged_port_start cannot be lowered instead).
            SecurityContext = new V1SecurityContext
            {
                RunAsUser = options.SidecarUser,
                AllowPrivilegeEscalation = false,
                Capabilities = new V1Capabilities { Drop = ["ALL"], Add = options.MeshDns ? ["NET_BIND_SERVICE"] : null },
            },
        };
    }

    private static T Read<T>(YamlMappingNode root, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, string kind)
    {
        JsonNode? json = YamlJson.ToJson(root);
        try
        {
            return JsonSerializer.Deserialize(json, type) ?? throw new ManifestException(root.Start, $"{kind}: empty object");
        }
        catch (JsonException e)
        {
            string path = e.Path ?? "$";
            string name = YamlJson.StringValue(Child(Child(root, "metadata"), "name")) ?? "(unnamed)";
            string message = e.Message;
            int cut = message.IndexOf(" Path:", StringComparison.Ordinal);
            if (cut > 0)
            {
                message = message[..cut];
            }

            throw new ManifestException(Locate(root, path), $"{kind} {name}: {path.TrimStart('$').TrimStart('.')}: {message}");
        }
    }

    // Follows a System.Text.Json path ($.spec.containers[0].ports) through the YAML tree, as far as it goes.
    private static Mark Locate(YamlNode root, string path)
    {
        YamlNode node = root;
        foreach (string part in path.TrimStart('$').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            string name = part;
            string? index = null;
            int bracket = part.IndexOf('[', StringComparison.Ordinal);
            if (bracket >= 0)
            {
                name = part[..bracket];
                index = part[(bracket + 1)..].TrimEnd(']');
            }

            if (name.Length > 0)
            {
                if (Child(node, name) is not { } next)
                {
                    break;
                }

                node = next;
            }

            if (index is not null && node is YamlSequenceNode seq && int.TryParse(index, out int i) && i < seq.Children.Count)
            {
                node = seq.Children[i];
            }
        }

        return node.Start;
    }

    // The models serialize their fields in alphabetical order; "name" goes first, as people write it.
    internal static YamlNode ToYaml<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        YamlNode node = YamlJson.ToYaml(JsonSerializer.SerializeToNode(value, type)!);
        if (node is YamlMappingNode map && Child(map, "name") is { } name)
        {
            var ordered = new YamlMappingNode { { "name", name } };
            foreach (var (key, child) in map.Children)
            {
                if (key is not YamlScalarNode { Value: "name" })
                {
                    ordered.Add(key, child);
                }
            }

            return ordered;
        }

        return node;
    }

    private static YamlNode? Child(YamlNode? node, string key) =>
        node is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode(key), out YamlNode? value) ? value : null;

    private static Mark Position(YamlMappingNode map, string key) => Child(map, key)?.Start ?? map.Start;

    private static YamlSequenceNode Sequence(YamlMappingNode map, string key)
    {
        if (Child(map, key) is YamlSequenceNode seq)
        {
            return seq;
        }

        seq = new YamlSequenceNode();
        map.Children[new YamlScalarNode(key)] = seq;
        return seq;
    }

    internal static string Write(List<YamlNode> documents)
    {
        var output = new StringWriter { NewLine = "\n" };
        var emitter = new DocumentMarkers(new Emitter(output, new EmitterSettings().WithBestWidth(int.MaxValue)));
        new YamlStream(documents.Select(d => new YamlDocument(d))).Save(emitter, assignAnchors: false);
        return output.ToString();
    }

    /// <summary>
    /// Writes "---" between documents and nothing after them (YamlStream ends each document with
    /// "...", which is valid YAML but not what Kubernetes tools write).
    /// </summary>
    private sealed class DocumentMarkers(IEmitter inner) : IEmitter
    {
        private bool _started;

        public void Emit(ParsingEvent @event)
        {
            switch (@event)
            {
                case DocumentStart start:
                    inner.Emit(new DocumentStart(start.Version, start.Tags, isImplicit: !_started));
                    _started = true;
                    break;
                case DocumentEnd:
                    inner.Emit(new DocumentEnd(isImplicit: true));
                    break;
                default:
                    inner.Emit(@event);
                    break;
            }
        }
    }

    private static string Describe(YamlException e)
    {
        // YamlDotNet prefixes the message with "(Line: l, Col: c, Idx: i) - (...): "; the position is reported separately.
        string message = e.Message;
        int cut = message.IndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith("(Line:", StringComparison.Ordinal) && cut >= 0 ? message[(cut + 3)..] : message;
    }
}
