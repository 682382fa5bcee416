using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Beemesh.Authorization.Tests;

/// <summary>The loader turns any input into policies or errors; it never throws.</summary>
public sealed class PolicyLoaderPropertyTests
{
    private const string Valid = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata:
          name: p
          namespace: foo
        spec:
          selector:
            matchLabels: {app: web}
          action: DENY
          rules:
          - from:
            - source: {principals: ["cluster.local/ns/a/sa/*"], ipBlocks: ["10.0.0.0/8"]}
            to:
            - operation: {ports: ["80"], methods: [GET], paths: ["/x*"]}
            when:
            - key: request.headers[x-a]
              values: ["b"]
        """;

    private static readonly string[] Tokens =
    [
        "apiVersion: security.istio.io/v1\n", "kind: AuthorizationPolicy\n", "metadata:", "name: p", "spec:", "rules:",
        "action: ", "DENY", "from:", "to:", "when:", "source:", "operation:", "principals:", "ports:", "ipBlocks:",
        "key: ", "values:", "notValues:", "request.headers[", "source.ip", "10.0.0.0/8", "::1/200", "\"80\"", "http",
        "- ", "  ", "    ", "\n", "---\n", "...\n", "[", "]", "{", "}", ",", ": ", "\"", "'", "&a ", "*a", "!!str ",
        "!!map ", "? ", "*", "#", "|", ">", "\t", "%YAML 1.2\n", "~", "null", "\u00e9", "\\", "\r\n", "\0",
    ];

    [Property(MaxTest = 2000)]
    public Property TokenSoupNeverThrows() =>
        Prop.ForAll(Arb.From(Gen.ArrayOf(Gen.Elements(Tokens)).Select(string.Concat)), Holds);

    [Property(MaxTest = 1000)]
    public Property ArbitraryStringsNeverThrow() => Prop.ForAll((string? text) => Holds(text ?? string.Empty));

    [Property(MaxTest = 2000)]
    public Property MutatedValidPoliciesNeverThrow() =>
        Prop.ForAll(
            Arb.From(
                from position in Gen.Choose(0, Valid.Length)
                from length in Gen.Choose(0, 8)
                from insert in Gen.Elements(Tokens)
                select Valid[..position] + insert + Valid[Math.Min(Valid.Length, position + length)..]),
            Holds);

    [Fact]
    public void TheUnmutatedPolicyLoads() =>
        Assert.True(PolicyLoader.Load(Valid, out _, out IReadOnlyList<PolicyError> errors), string.Join("\n", errors));

    private static bool Holds(string yaml)
    {
        bool ok = PolicyLoader.Load(yaml, out IReadOnlyList<AuthorizationPolicy> policies, out IReadOnlyList<PolicyError> errors);

        // All or nothing, and every error points at a real position.
        return ok
            ? errors.Count == 0
            : policies.Count == 0 && errors.Count != 0 && errors.All(e => e.Line >= 1 && e.Column >= 1 && e.Message.Length != 0);
    }
}
