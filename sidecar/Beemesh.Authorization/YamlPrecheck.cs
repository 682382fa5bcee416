using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Beemesh.Authorization;

/// <summary>
/// A first pass over a YAML text's parser events, made before the representation model (which
/// recurses once per level) is built: reports syntax errors, refuses aliases and bounds the nesting
/// depth. Shared by every loader of user-written YAML (policies, state components).
/// </summary>
public static class YamlPrecheck
{
    /// <summary>
    /// Checks <paramref name="yaml"/>; returns null when it passes, else where the first problem is
    /// and a one-line description of it.
    /// </summary>
    public static (Mark At, string Message)? Check(string yaml, int maxDepth)
    {
        var parser = new Parser(new StringReader(yaml));
        int depth = 0;
        Mark last = Mark.Empty;
        try
        {
            while (parser.MoveNext())
            {
                last = parser.Current!.End;
                switch (parser.Current)
                {
                    case MappingStart or SequenceStart:
                        if (++depth > maxDepth)
                        {
                            return (parser.Current.Start, $"nesting deeper than {maxDepth} levels");
                        }

                        break;
                    case MappingEnd or SequenceEnd:
                        depth--;
                        break;
                    case AnchorAlias alias:
                        return (alias.Start, $"YAML aliases are not supported (*{alias.Value})");
                }
            }
        }
        catch (YamlException e)
        {
            return (e.Start, SyntaxError(e));
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException)
        {
            // YamlDotNet's scanner reports some malformed input (e.g. a NUL after "...") with plain
            // .NET exceptions and no position; the last good event is the best place known.
            return (last, "YAML syntax error: " + e.Message.ReplaceLineEndings(" "));
        }

        return null;
    }

    /// <summary>"YAML syntax error: ..." for <paramref name="e"/>, on one line, without YamlDotNet's position prefix (callers report the position).</summary>
    public static string SyntaxError(YamlException e)
    {
        // YamlDotNet prefixes the message with "(Line: l, Col: c, Idx: i) - (...): ".
        string message = e.Message;
        int cut = message.IndexOf("): ", StringComparison.Ordinal);
        if (message.StartsWith("(Line:", StringComparison.Ordinal) && cut >= 0)
        {
            message = message[(cut + 3)..];
        }

        return "YAML syntax error: " + message.ReplaceLineEndings(" ");
    }
}
