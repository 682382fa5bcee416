using System.Net;

namespace Beemesh.Authorization.Tests;

public sealed class PolicyEvaluatorTests
{
    private const string Policies = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: audit-all, namespace: istio-system}
        spec:
          action: AUDIT
          rules: [{}]
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: no-admin, namespace: foo}
        spec:
          selector: {matchLabels: {app: web}}
          action: DENY
          rules:
          - to: [{operation: {paths: ["/admin*"]}}]
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: from-bar, namespace: foo}
        spec:
          selector: {matchLabels: {app: web}}
          rules:
          - from: [{source: {namespaces: [qux]}}]
          - from: [{source: {principals: ["cluster.local/ns/bar/*"], ipBlocks: ["10.0.0.0/8"]}}]
            to: [{operation: {ports: ["8080"], methods: ["GET"]}}]
            when: [{key: "request.headers[x-user]", values: ["*"]}]
        """;

    private static readonly IReadOnlyList<AuthorizationPolicy> Loaded = Load(Policies);

    [Fact]
    public void ReasonNamesTheDecidingPolicyRuleAndAudit()
    {
        AuthorizationDecision allowed = PolicyEvaluator.Default.Evaluate(Loaded, Request("/items"));
        Assert.True(allowed.Allowed);
        Assert.Equal("from-bar", allowed.PolicyName);
        Assert.Equal("foo", allowed.PolicyNamespace);
        Assert.Equal(1, allowed.RuleIndex);
        Assert.Equal("allowed by ALLOW policy foo/from-bar rule 1; audited by istio-system/audit-all rule 0", allowed.Reason);

        AuthorizationDecision denied = PolicyEvaluator.Default.Evaluate(Loaded, Request("/admin/users"));
        Assert.False(denied.Allowed);
        Assert.Equal("denied by DENY policy foo/no-admin rule 0; audited by istio-system/audit-all rule 0", denied.Reason);
    }

    [Fact]
    public void DefaultReasons()
    {
        var tcp = new AuthorizationRequest { WorkloadNamespace = "foo", DestinationPort = 1 };
        AuthorizationDecision open = new PolicyEvaluator().Evaluate([], tcp);
        Assert.Equal("allowed: no ALLOW policy applies to the workload", open.Reason);
        Assert.Null(open.PolicyName);
        Assert.Equal(-1, open.RuleIndex);

        AuthorizationDecision closed = PolicyEvaluator.Default.Evaluate([new AuthorizationPolicy { Name = "nothing", Namespace = "foo" }], tcp);
        Assert.False(closed.Allowed);
        Assert.Equal(AuthorizationOutcome.DeniedNoAllowMatch, closed.Outcome);
        Assert.Equal("default deny: ALLOW policies apply to the workload but none matched", closed.Reason);
    }

    [Fact]
    public void PoliciesBuiltInCodeEvaluateLikeLoadedOnes()
    {
        Assert.True(StringMatch.TryParse("cluster.local/ns/bar/*", out StringMatch bar, out _));
        var policy = new AuthorizationPolicy
        {
            Name = "code",
            Namespace = "foo",
            Selector = new SortedDictionary<string, string> { ["app"] = "web" },
            Rules = [new PolicyRule { From = [new PolicySource { Principals = [bar] }], When = [PolicyCondition.Create("destination.port", ["8080"])] }],
        };

        Assert.True(PolicyEvaluator.Default.Evaluate([policy], Request("/")).Allowed);
        Assert.False(PolicyEvaluator.Default.Evaluate([policy], Request("/").WithPort(9)).Allowed);
    }

    [Fact]
    public void EvaluatingAllocatesNothing()
    {
        AuthorizationRequest request = Request("/items");
        PolicyEvaluator evaluator = PolicyEvaluator.Default;
        evaluator.Evaluate(Loaded, request);

        long before = GC.GetAllocatedBytesForCurrentThread();
        bool allowed = true;
        for (int i = 0; i < 1000; i++)
        {
            allowed &= evaluator.Evaluate(Loaded, request).Allowed;
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allowed);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void RootNamespaceMustBeNamed() => Assert.Throws<ArgumentException>(() => new PolicyEvaluator(string.Empty));

    [Theory]
    [InlineData("abc", StringMatchKind.Exact, "abc")]
    [InlineData("abc*", StringMatchKind.Prefix, "abc")]
    [InlineData("*abc", StringMatchKind.Suffix, "abc")]
    [InlineData("*", StringMatchKind.Presence, "")]
    public void StringMatchParsesEachForm(string text, StringMatchKind kind, string value)
    {
        Assert.True(StringMatch.TryParse(text, out StringMatch match, out string? error), error);
        Assert.Equal(kind, match.Kind);
        Assert.Equal(value, match.Value);
        Assert.Equal(text, match.ToString());
    }

    [Theory]
    [InlineData("*", "", false)]
    [InlineData("*", null, false)]
    [InlineData("*", "x", true)]
    [InlineData("a*", "a", true)]
    [InlineData("*a", "ba", true)]
    [InlineData("a", "A", false)]
    public void StringMatchMatches(string pattern, string? value, bool expected)
    {
        Assert.True(StringMatch.TryParse(pattern, out StringMatch match, out _));
        Assert.Equal(expected, match.Matches(value));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a*b")]
    [InlineData("**")]
    [InlineData("*a*")]
    public void StringMatchRefusesMisplacedStars(string text) =>
        Assert.False(StringMatch.TryParse(text, out _, out _));

    private static IReadOnlyList<AuthorizationPolicy> Load(string yaml)
    {
        Assert.True(PolicyLoader.Load(yaml, out IReadOnlyList<AuthorizationPolicy> policies, out IReadOnlyList<PolicyError> errors), string.Join("\n", errors));
        return policies;
    }

    private static AuthorizationRequest Request(string path) => new()
    {
        WorkloadNamespace = "foo",
        WorkloadLabels = new Dictionary<string, string> { ["app"] = "web" },
        SourcePrincipal = "cluster.local/ns/bar/sa/client",
        SourceNamespace = "bar",
        SourceAddress = IPAddress.Parse("10.0.0.7"),
        DestinationPort = 8080,
        Http = new HttpRequestAttributes
        {
            Method = "GET",
            Path = path,
            Host = "web.foo",
            Headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["X-User"] = "alice" },
        },
    };
}

internal static class AuthorizationRequestExtensions
{
    public static AuthorizationRequest WithPort(this AuthorizationRequest request, int port) => new()
    {
        WorkloadNamespace = request.WorkloadNamespace,
        WorkloadLabels = request.WorkloadLabels,
        SourcePrincipal = request.SourcePrincipal,
        SourceNamespace = request.SourceNamespace,
        SourceAddress = request.SourceAddress,
        DestinationPort = port,
        Http = request.Http,
    };
}
