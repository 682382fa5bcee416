namespace Beemesh.Slirp.Cli;

/// <summary>What the stack attaches to (<c>--target-type</c>).</summary>
public enum SlirpTargetType
{
    /// <summary>A tap device created inside a network namespace (default).</summary>
    Netns,

    /// <summary>
    /// A BESS unix socket. slirp4netns 1.2 accepts it, so the command line parses it the same way;
    /// the stack itself does not implement it.
    /// </summary>
    Bess,
}
