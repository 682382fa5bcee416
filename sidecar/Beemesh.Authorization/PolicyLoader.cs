using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Beemesh.Authorization;

/// <summary>
/// Loads Istio <c>AuthorizationPolicy</c> documents from YAML text. All or nothing: a file with any
/// error yields no policies, so a typo can never silently widen or narrow access.
/// </summary>
/// <remarks>
/// Accepted: one or more documents separated by <c>---</c>, each of kind <c>AuthorizationPolicy</c>
/// with apiVersion <c>security.istio.io/v1</c> or <c>security.istio.io/v1beta1</c>; empty documents are
/// skipped. Refused, each with its line, column and field path: YAML syntax errors, duplicate keys,
/// unknown fields, a list where a mapping belongs (and every other wrong shape), empty required
/// values, values that do not parse (ports, CIDR ranges, match patterns), features this
/// implementation does not support (CUSTOM, JWT request principals, remote IP blocks, targetRefs,
/// conditions other than <see cref="PolicyCondition"/>'s keys), YAML aliases (they add nothing to a
/// policy and would let a small file expand enormously), and a policy name used twice in a namespace.
/// Uses YamlDotNet's parser and representation model only (no reflection), so it is trim- and AOT-safe.
/// </remarks>
public static class PolicyLoader
{
    /// <summary>Nesting deeper than this cannot be a policy; refusing it keeps recursion bounded.</summary>
    private const int MaxDepth = 32;

    /// <summary>Loads every policy in <paramref name="yaml"/>.</summary>
    /// <param name="yaml">The file's text.</param>
    /// <param name="policies">The policies, in file order; empty when any error was found.</param>
    /// <param name="errors">Every error found, in file order; empty on success.</param>
    /// <returns>True when the file was accepted.</returns>
    public static bool Load(string yaml, out IReadOnlyList<AuthorizationPolicy> policies, out IReadOnlyList<PolicyError> errors)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        var found = new List<PolicyError>();
        policies = [];
        errors = found;

        if (!CheckStructure(yaml, found))
        {
            return false;
        }

        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            found.Add(SyntaxError(e));
            return false;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException)
        {
            // The first pass parsed the same text, so this is not expected; refuse rather than throw.
            found.Add(PolicyError.At(Mark.Empty, string.Empty, "YAML syntax error: " + e.Message));
            return false;
        }

        var reader = new PolicyDocumentReader(found);
        var loaded = new List<AuthorizationPolicy>();
        var seen = new Dictionary<(string Namespace, string Name), int>();
        foreach (YamlDocument document in stream.Documents)
        {
            if (PolicyDocumentReader.IsNull(document.RootNode))
            {
                continue;
            }

            AuthorizationPolicy? policy = reader.ReadDocument(document.RootNode, out Mark nameMark);
            if (policy is null)
            {
                continue;
            }

            if (seen.TryGetValue((policy.Namespace, policy.Name), out int firstLine))
            {
                found.Add(PolicyError.At(nameMark, "metadata.name", $"policy \"{policy}\" is already defined at line {firstLine}"));
                continue;
            }

            seen.Add((policy.Namespace, policy.Name), (int)Math.Min(nameMark.Line, int.MaxValue));
            loaded.Add(policy);
        }

        if (found.Count != 0)
        {
            return false;
        }

        policies = loaded;
        return true;
    }

    /// <summary>The first pass over the text (<see cref="YamlPrecheck"/>); adds its error and returns false when it fails.</summary>
    private static bool CheckStructure(string yaml, List<PolicyError> errors)
    {
        if (YamlPrecheck.Check(yaml, MaxDepth) is { } bad)
        {
            errors.Add(PolicyError.At(bad.At, string.Empty, bad.Message));
            return false;
        }

        return true;
    }

    private static PolicyError SyntaxError(YamlException e) => PolicyError.At(e.Start, string.Empty, YamlPrecheck.SyntaxError(e));
}
