using YamlDotNet.Core;

namespace Beemesh.Authorization;

/// <summary>
/// One reason a policy file was refused: where (1-based line and column in the loaded text, and
/// the field path such as <c>spec.rules[0].to[0].operation.ports[1]</c>) and what is wrong.
/// </summary>
/// <param name="Line">1-based line of the offending node.</param>
/// <param name="Column">1-based column of the offending node.</param>
/// <param name="Path">Field path from the document root; empty for syntax errors.</param>
/// <param name="Message">What is wrong, in one line.</param>
public sealed record PolicyError(int Line, int Column, string Path, string Message)
{
    /// <summary>
    /// <c>line 12, column 20: spec.rules[0].to[0].operation.ports[1]: "http" is not a port number</c>
    /// (the path part is left out when empty).
    /// </summary>
    public override string ToString() =>
        Path.Length == 0
            ? $"line {Line}, column {Column}: {Message}"
            : $"line {Line}, column {Column}: {Path}: {Message}";

    /// <summary>An error at a parser position (YamlDotNet marks are 1-based; 0 means unknown).</summary>
    internal static PolicyError At(Mark mark, string path, string message) =>
        new((int)Math.Clamp(mark.Line, 1, int.MaxValue), (int)Math.Clamp(mark.Column, 1, int.MaxValue), path, message);
}
