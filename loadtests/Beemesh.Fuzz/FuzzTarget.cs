namespace Beemesh.Fuzz;

/// <summary>
/// One fuzz target: a parser or an input socket's handler fed arbitrary bytes. <see cref="Run"/>
/// may throw only the exception types in <see cref="Documented"/> (the parser's specified way of
/// refusing input); anything else escaping is a finding.
/// </summary>
public abstract class FuzzTarget
{
    /// <summary>Name used on the command line and as the corpus directory's name.</summary>
    public abstract string Name { get; }

    /// <summary>Exception types <see cref="Run"/> is documented to throw on bad input.</summary>
    public virtual IReadOnlyList<Type> Documented => [];

    /// <summary>Feeds one input.</summary>
    public abstract void Run(ReadOnlySpan<byte> input);

    /// <summary>What the target did beyond not failing (e.g. frames the stack answered with), for the summary line.</summary>
    public virtual string Activity => "";

    /// <summary>True when <paramref name="e"/> is one of the documented refusals.</summary>
    public bool IsDocumented(Exception e) => Documented.Any(t => t.IsInstanceOfType(e));

    /// <summary>Every target, by name.</summary>
    public static IReadOnlyDictionary<string, Func<FuzzTarget>> All { get; } = new Dictionary<string, Func<FuzzTarget>>(StringComparer.Ordinal)
    {
        ["packet"] = () => new PacketTarget(),
        ["slirp-api"] = () => new SlirpApiTarget(),
        ["policy-yaml"] = () => new PolicyYamlTarget(),
        ["tunnel-frames"] = () => new TunnelFramesTarget(),
        ["dns"] = () => new DnsTarget(),
        ["admin-api"] = () => new AdminApiTarget(),
        ["workload-api"] = () => new WorkloadApiTarget(),
        ["join-token"] = () => new JoinTarget(),
        ["gossip-records"] = () => new GossipTarget(),
        ["state-component"] = () => new StateComponentTarget(),
    };
}
