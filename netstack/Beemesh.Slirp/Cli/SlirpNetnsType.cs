namespace Beemesh.Slirp.Cli;

/// <summary>How the first positional argument names the target network namespace (<c>--netns-type</c>).</summary>
public enum SlirpNetnsType
{
    /// <summary>A process id; the namespace is <c>/proc/PID/ns/net</c> (default).</summary>
    Pid,

    /// <summary>A path to a namespace file, such as a bind mount under <c>/run/user/.../netns</c>.</summary>
    Path,
}
