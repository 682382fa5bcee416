using YamlDotNet.Core;

namespace Beemesh.Inject;

/// <summary>
/// A manifest that cannot be injected: bad YAML, a field of the wrong type, or a pod that the
/// sidecar cannot serve. Carries the position in the input (1-based line and column).
/// </summary>
public sealed class ManifestException : Exception
{
    /// <summary>Creates the error at <paramref name="at"/>.</summary>
    public ManifestException(Mark at, string message)
        : base(message)
    {
        Line = at.Line;
        Column = at.Column;
    }

    /// <summary>1-based line of the input where the problem is.</summary>
    public long Line { get; }

    /// <summary>1-based column of the input where the problem is.</summary>
    public long Column { get; }
}
