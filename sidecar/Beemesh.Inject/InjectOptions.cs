namespace Beemesh.Inject;

/// <summary>What <see cref="SidecarInjector"/> puts into each pod.</summary>
public sealed record InjectOptions
{
    /// <summary>Image of the sidecar container (the repository's Dockerfile builds it).</summary>
    public string Image { get; init; } = "localhost/beemesh:latest";

    /// <summary>
    /// Namespace of objects whose metadata names none (as kubectl's current namespace would). It is
    /// written into the sidecar's arguments: podman 4.3 has no downward-API metadata.namespace.
    /// </summary>
    public string DefaultNamespace { get; init; } = "default";

    /// <summary>Port inside the pod on which the sidecar accepts the mesh's mTLS tunnel (Istio's inbound port).</summary>
    public int InboundPort { get; init; } = 15006;

    /// <summary>The node agent's directory on the host, mounted into the sidecar at the same path.</summary>
    public string AgentDirectory { get; init; } = "/run/beemesh";

    /// <summary>
    /// When set, the pod's DNS (dnsPolicy None, dnsConfig) points at the sidecar's resolver on
    /// 127.0.0.1 and the sidecar is started with <c>--dns 127.0.0.1:53</c>.
    /// </summary>
    public bool MeshDns { get; init; }

    /// <summary>
    /// With <see cref="MeshDns"/>: the resolver the sidecar sends every name that is not a mesh name
    /// to (the pod's resolv.conf names only the sidecar). Default 10.0.2.3, slirp4netns's resolver,
    /// which rootless podman pods use; in a cluster, the cluster DNS service's address.
    /// </summary>
    public string DnsUpstream { get; init; } = "10.0.2.3";

    /// <summary>
    /// Where the pod's network reaches the node's loopback, on which this node's workloads take
    /// their tunnels (10.0.2.2 for a pod behind slirp4netns with <c>allow_host_loopback=true</c>);
    /// passed to the sidecar as <c>--node-loopback</c>. Null: not passed.
    /// </summary>
    public string? NodeLoopback { get; init; }

    /// <summary>
    /// The sidecar container's uid (<c>runAsUser</c>): the owner of the node agent, whose admin API
    /// the sidecar calls. Default 0, which rootless podman maps to the user running podman and the agent.
    /// </summary>
    public long SidecarUser { get; init; }

    /// <summary>Value of the <see cref="SidecarInjector.InjectedAnnotation"/> annotation (at most 63 characters, for podman).</summary>
    public string Version { get; init; } = "1";
}
