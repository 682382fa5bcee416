using System.Net;

namespace Beemesh.Authorization.Tests;

/// <summary>
/// Istio semantics, one row per rule of the specification: each row is a policy file, a request and
/// the decision Istio would take (outcome, deciding policy and rule, audit flag).
/// </summary>
public sealed class PolicyEvaluatorMatrixTests
{
    private const string Client = "cluster.local/ns/bar/sa/client";

    private static readonly Dictionary<string, MatrixCase> Cases = BuildCases();

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (string name in Cases.Keys)
        {
            data.Add(name);
        }

        return data;
    }

    /// <summary>Every field of the rule grammar the evaluator reads; each must be exercised by the table.</summary>
    private static readonly string[] GrammarFields =
    [
        "principals", "notPrincipals", "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks",
        "ports", "notPorts", "methods", "notMethods", "paths", "notPaths", "hosts", "notHosts",
        "selector", "when", "notValues", "source.principal", "source.namespace", "source.ip", "destination.port", "request.headers",
    ];

    [Fact]
    public void MatrixCoversEveryOutcomeAuditAndGrammarField()
    {
        Assert.True(Cases.Count >= 40, $"only {Cases.Count} rows");
        foreach (AuthorizationOutcome outcome in Enum.GetValues<AuthorizationOutcome>())
        {
            Assert.True(Cases.Values.Count(c => c.Outcome == outcome) >= 2, $"fewer than two rows decide {outcome}");
        }

        Assert.Contains(Cases.Values, c => c.Audit);
        Assert.Contains(Cases.Values, c => c.Rule > 0);
        Assert.Contains(Cases.Values, c => c.RootNamespace is not null);
        foreach (string field in GrammarFields)
        {
            // A field is covered when it both admits a request in one row and refuses one in another.
            var rows = Cases.Values.Where(c => c.Yaml.Contains(field, StringComparison.Ordinal)).ToList();
            Assert.True(rows.Any(c => c.Outcome is AuthorizationOutcome.AllowedByPolicy or AuthorizationOutcome.AllowedNoAllowPolicy), $"no row where {field} lets a request through");
            Assert.True(rows.Any(c => c.Outcome is AuthorizationOutcome.DeniedByPolicy or AuthorizationOutcome.DeniedNoAllowMatch), $"no row where {field} refuses a request");
        }
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Decides(string name)
    {
        MatrixCase c = Cases[name];
        Assert.True(PolicyLoader.Load(c.Yaml, out IReadOnlyList<AuthorizationPolicy> policies, out IReadOnlyList<PolicyError> errors), string.Join("\n", errors));
        var evaluator = c.RootNamespace is null ? PolicyEvaluator.Default : new PolicyEvaluator(c.RootNamespace);

        AuthorizationDecision decision = evaluator.Evaluate(policies, c.Request.Build());

        Assert.Equal(c.Outcome, decision.Outcome);
        Assert.Equal(c.Outcome is AuthorizationOutcome.AllowedByPolicy or AuthorizationOutcome.AllowedNoAllowPolicy, decision.Allowed);
        Assert.Equal(c.Policy, decision.Policy?.ToString());
        Assert.Equal(c.Rule, decision.RuleIndex);
        Assert.Equal(c.Audit, decision.Audit);

        // The same policies passed as a lazy sequence decide the same way.
        AuthorizationDecision lazy = evaluator.Evaluate(policies.Where(_ => true), c.Request.Build());
        Assert.Equal(decision, lazy);
    }

    private static Dictionary<string, MatrixCase> BuildCases()
    {
        var tcp = new Req();
        var get = tcp with { Method = "GET", Path = "/api/v1/items", Host = "example.com" };
        var post = get with { Method = "POST" };

        var rows = new List<MatrixCase>
        {
            // Defaults.
            new("no policies: allowed", "", tcp, AuthorizationOutcome.AllowedNoAllowPolicy),
            new("ALLOW without rules denies all", Pol("nothing", "ALLOW", null), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("ALLOW with rules: [] denies all", Pol("nothing", "ALLOW", "[]"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("ALLOW with an empty rule allows all", Pol("all", "ALLOW", "[{}]"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/all", 0),
            new("action omitted means ALLOW", Pol("all", null, "[{}]"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/all", 0),
            new("DENY without rules never matches", Pol("d", "DENY", null), tcp, AuthorizationOutcome.AllowedNoAllowPolicy),
            new("DENY with an empty rule denies all", Pol("d", "DENY", "[{}]"), tcp, AuthorizationOutcome.DeniedByPolicy, "foo/d", 0),

            // principals.
            new("principals exact match", From("principals", Client), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("principals exact mismatch", From("principals", "cluster.local/ns/bar/sa/other"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("principals prefix match", From("principals", "cluster.local/ns/bar/*"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("principals prefix mismatch", From("principals", "cluster.local/ns/baz/*"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("principals suffix match", From("principals", "*/sa/client"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("principals suffix mismatch", From("principals", "*/sa/other"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("principals presence with identity", From("principals", "*"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("principals presence without identity", From("principals", "*"), tcp with { Principal = null }, AuthorizationOutcome.DeniedNoAllowMatch),
            new("principals exact without identity", From("principals", Client), tcp with { Principal = null }, AuthorizationOutcome.DeniedNoAllowMatch),
            new("notPrincipals * admits the unauthenticated", From("notPrincipals", "*"), tcp with { Principal = null }, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("notPrincipals excludes the caller", From("notPrincipals", Client), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("notPrincipals other admits the caller", From("notPrincipals", "*/sa/other"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),

            // namespaces.
            new("namespaces match", From("namespaces", "bar"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("namespaces prefix match", From("namespaces", "ba*"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("namespaces mismatch", From("namespaces", "qux"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("notNamespaces excludes", From("notNamespaces", "bar"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("notNamespaces admits others", From("notNamespaces", "qux"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),

            // ipBlocks.
            new("ipBlocks CIDR match", From("ipBlocks", "10.0.0.0/8"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("ipBlocks CIDR mismatch", From("ipBlocks", "192.168.0.0/16"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("ipBlocks single address", From("ipBlocks", "10.1.2.3"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("ipBlocks host bits are masked", From("ipBlocks", "10.1.2.99/24"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("ipBlocks IPv4-mapped source", From("ipBlocks", "10.0.0.0/8"), tcp with { Ip = "::ffff:10.1.2.3" }, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("ipBlocks IPv6", From("ipBlocks", "fd00::/64"), tcp with { Ip = "fd00::5" }, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("notIpBlocks excludes", From("notIpBlocks", "10.1.0.0/16"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("notIpBlocks admits others", From("notIpBlocks", "192.168.0.0/16"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),

            // AND within a source, OR across sources, AND across from/to/when.
            new("source fields are ANDed", Pol("p", "ALLOW", $"[{{from: [{{source: {{principals: [\"{Client}\"], namespaces: [qux]}}}}]}}]"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("from entries are ORed", Pol("p", "ALLOW", $"[{{from: [{{source: {{namespaces: [qux]}}}}, {{source: {{principals: [\"{Client}\"]}}}}]}}]"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("from and to are ANDed", Pol("p", "ALLOW", "[{from: [{source: {namespaces: [bar]}}], to: [{operation: {ports: [\"9999\"]}}]}]"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("rules are ORed and the first match is reported", Pol("p", "ALLOW", "[{to: [{operation: {ports: [\"1\"]}}]}, {to: [{operation: {ports: [\"8080\"]}}]}]"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 1),

            // Ports.
            new("ports match", To("ports", "8080"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("ports written as numbers", Pol("p", "ALLOW", "[{to: [{operation: {ports: [80, 8080]}}]}]"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("ports mismatch", To("ports", "9090"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("notPorts excludes", To("notPorts", "8080"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("notPorts admits others", To("notPorts", "9090"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),

            // HTTP fields on HTTP requests.
            new("methods match", To("methods", "GET"), get, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("methods mismatch", To("methods", "GET"), post, AuthorizationOutcome.DeniedNoAllowMatch),
            new("methods are case-sensitive", To("methods", "get"), get, AuthorizationOutcome.DeniedNoAllowMatch),
            new("notMethods admits others", To("notMethods", "DELETE"), get, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("notMethods excludes the method", To("notMethods", "GET"), get, AuthorizationOutcome.DeniedNoAllowMatch),
            new("paths prefix", To("paths", "/api/*"), get, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("paths suffix", To("paths", "*/items"), get, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("paths exact mismatch", To("paths", "/api"), get, AuthorizationOutcome.DeniedNoAllowMatch),
            new("notPaths excludes", To("notPaths", "/api/*"), get, AuthorizationOutcome.DeniedNoAllowMatch),
            new("notPaths admits others", To("notPaths", "/admin/*"), get, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("hosts are case-insensitive", To("hosts", "Example.COM"), get, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("hosts mismatch", To("hosts", "example.org"), get, AuthorizationOutcome.DeniedNoAllowMatch),
            new("notHosts excludes by suffix", To("notHosts", "*.com"), get, AuthorizationOutcome.DeniedNoAllowMatch),
            new("notHosts admits others", To("notHosts", "*.org"), get, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),

            // HTTP-only fields on plain TCP.
            new("TCP: ALLOW rule with methods never matches", To("methods", "GET"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("TCP: ALLOW rule with methods and a matching port never matches", Pol("p", "ALLOW", "[{to: [{operation: {methods: [GET], ports: [\"8080\"]}}]}]"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("TCP: ALLOW rule with an HTTP operation beside a TCP one is ignored whole", Pol("p", "ALLOW", "[{to: [{operation: {methods: [GET]}}, {operation: {ports: [\"8080\"]}}]}]"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("TCP: a later TCP-only ALLOW rule still matches", Pol("p", "ALLOW", "[{to: [{operation: {methods: [GET]}}]}, {to: [{operation: {ports: [\"8080\"]}}]}]"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 1),
            new("TCP: DENY rule with only methods denies everything", Pol("d", "DENY", "[{to: [{operation: {methods: [GET]}}]}]"), tcp, AuthorizationOutcome.DeniedByPolicy, "foo/d", 0),
            new("TCP: DENY rule with notPaths denies everything", Pol("d", "DENY", "[{to: [{operation: {notPaths: [/healthz]}}]}]"), tcp, AuthorizationOutcome.DeniedByPolicy, "foo/d", 0),
            new("TCP: DENY rule with methods and another port does not match", Pol("d", "DENY", "[{to: [{operation: {methods: [GET], ports: [\"9000\"]}}]}]"), tcp, AuthorizationOutcome.AllowedNoAllowPolicy),
            new("TCP: DENY rule with methods and this port denies", Pol("d", "DENY", "[{to: [{operation: {methods: [GET], ports: [\"8080\"]}}]}]"), tcp, AuthorizationOutcome.DeniedByPolicy, "foo/d", 0),
            new("HTTP: DENY on methods GET lets POST through", Pol("d", "DENY", "[{to: [{operation: {methods: [GET]}}]}]"), post, AuthorizationOutcome.AllowedNoAllowPolicy),
            new("HTTP: DENY on methods GET denies GET", Pol("d", "DENY", "[{to: [{operation: {methods: [GET]}}]}]"), get, AuthorizationOutcome.DeniedByPolicy, "foo/d", 0),

            // DENY before ALLOW.
            new("DENY wins over a matching ALLOW", Pol("all", "ALLOW", "[{}]") + "---\n" + Pol("d", "DENY", $"[{{from: [{{source: {{principals: [\"{Client}\"]}}}}]}}]"), tcp, AuthorizationOutcome.DeniedByPolicy, "foo/d", 0),
            new("a non-matching DENY leaves the ALLOW", Pol("all", "ALLOW", "[{}]") + "---\n" + Pol("d", "DENY", "[{from: [{source: {namespaces: [qux]}}]}]"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/all", 0),
            new("any matching ALLOW policy suffices", Pol("a1", "ALLOW", "[{from: [{source: {namespaces: [qux]}}]}]") + "---\n" + Pol("a2", "ALLOW", "[{from: [{source: {namespaces: [bar]}}]}]"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/a2", 0),

            // Scoping.
            new("selector matching the workload applies", Pol("nothing", "ALLOW", null, labels: "{app: web}"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("selector needs every label", Pol("nothing", "ALLOW", null, labels: "{app: web, version: v2}"), tcp, AuthorizationOutcome.AllowedNoAllowPolicy),
            new("selector with another value does not apply", Pol("nothing", "ALLOW", null, labels: "{app: db}"), tcp, AuthorizationOutcome.AllowedNoAllowPolicy),
            new("policy in another namespace does not apply", Pol("nothing", "ALLOW", null, ns: "other"), tcp, AuthorizationOutcome.AllowedNoAllowPolicy),
            new("DENY in another namespace does not apply", Pol("d", "DENY", "[{}]", ns: "other"), tcp, AuthorizationOutcome.AllowedNoAllowPolicy),
            new("root namespace policy applies mesh-wide", Pol("nothing", "ALLOW", null, ns: "istio-system"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("root namespace selector applies in every namespace", Pol("d", "DENY", "[{}]", ns: "istio-system", labels: "{app: web}"), tcp, AuthorizationOutcome.DeniedByPolicy, "istio-system/d", 0),
            new("root namespace selector skips other workloads", Pol("d", "DENY", "[{}]", ns: "istio-system", labels: "{app: db}"), tcp, AuthorizationOutcome.AllowedNoAllowPolicy),
            new("configured root namespace applies mesh-wide", Pol("d", "DENY", "[{}]", ns: "mesh-root"), tcp, AuthorizationOutcome.DeniedByPolicy, "mesh-root/d", 0) { RootNamespace = "mesh-root" },
            new("istio-system is not root when another is configured", Pol("d", "DENY", "[{}]", ns: "istio-system"), tcp, AuthorizationOutcome.AllowedNoAllowPolicy) { RootNamespace = "mesh-root" },

            // AUDIT.
            new("AUDIT match marks an allowed request", Pol("au", "AUDIT", "[{}]"), tcp, AuthorizationOutcome.AllowedNoAllowPolicy) { Audit = true },
            new("AUDIT is not an ALLOW policy", Pol("au", "AUDIT", "[{from: [{source: {namespaces: [qux]}}]}]"), tcp, AuthorizationOutcome.AllowedNoAllowPolicy),
            new("AUDIT marks a denied request too", Pol("au", "AUDIT", "[{}]") + "---\n" + Pol("d", "DENY", "[{}]"), tcp, AuthorizationOutcome.DeniedByPolicy, "foo/d", 0) { Audit = true },
            new("AUDIT with methods does not match TCP", Pol("au", "AUDIT", "[{to: [{operation: {methods: [GET]}}]}]"), tcp, AuthorizationOutcome.AllowedNoAllowPolicy),

            // when conditions.
            new("when source.principal", When("source.principal", "values", "*/sa/client"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("when source.principal mismatch", When("source.principal", "values", "*/sa/other"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("when source.namespace notValues", When("source.namespace", "notValues", "bar"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("when source.namespace notValues admits others", When("source.namespace", "notValues", "qux"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("when destination.port", When("destination.port", "values", "8080"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("when destination.port mismatch", When("destination.port", "values", "443"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("when source.ip", When("source.ip", "values", "10.0.0.0/8"), tcp, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("when source.ip mismatch", When("source.ip", "values", "192.168.0.0/16"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("when request.headers match", When("request.headers[X-User]", "values", "ali*"), get with { Headers = [("x-user", "alice")] }, AuthorizationOutcome.AllowedByPolicy, "foo/p", 0),
            new("when request.headers missing header", When("request.headers[x-user]", "values", "*"), get, AuthorizationOutcome.DeniedNoAllowMatch),
            new("TCP: ALLOW when request.headers never matches", When("request.headers[x-user]", "notValues", "bob"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
            new("TCP: DENY when request.headers is ignored", Pol("d", "DENY", "[{when: [{key: \"request.headers[x-user]\", values: [bob]}]}]"), tcp, AuthorizationOutcome.DeniedByPolicy, "foo/d", 0),
            new("when conditions are ANDed", Pol("p", "ALLOW", "[{when: [{key: source.namespace, values: [bar]}, {key: destination.port, values: [\"1\"]}]}]"), tcp, AuthorizationOutcome.DeniedNoAllowMatch),
        };

        var cases = new Dictionary<string, MatrixCase>(StringComparer.Ordinal);
        foreach (MatrixCase row in rows)
        {
            cases.Add(row.Name, row);
        }

        return cases;
    }

    private static string From(string field, string value) =>
        Pol("p", "ALLOW", $"[{{from: [{{source: {{{field}: [\"{value}\"]}}}}]}}]");

    private static string To(string field, string value) =>
        Pol("p", "ALLOW", $"[{{to: [{{operation: {{{field}: [\"{value}\"]}}}}]}}]");

    private static string When(string key, string field, string value) =>
        Pol("p", "ALLOW", $"[{{when: [{{key: \"{key}\", {field}: [\"{value}\"]}}]}}]");

    private static string Pol(string name, string? action, string? rules, string ns = "foo", string? labels = null) =>
        "apiVersion: security.istio.io/v1\n"
        + "kind: AuthorizationPolicy\n"
        + $"metadata:\n  name: {name}\n  namespace: {ns}\n"
        + "spec:\n"
        + (labels is null ? string.Empty : $"  selector:\n    matchLabels: {labels}\n")
        + (action is null ? string.Empty : $"  action: {action}\n")
        + (rules is null ? string.Empty : $"  rules: {rules}\n");

    private sealed record MatrixCase(string Name, string Yaml, Req Request, AuthorizationOutcome Outcome, string? Policy = null, int Rule = -1)
    {
        public bool Audit { get; init; }

        public string? RootNamespace { get; init; }
    }

    /// <summary>A request described by value so rows can vary one field with <c>with</c>.</summary>
    private sealed record Req
    {
        public string? Principal { get; init; } = Client;

        public string? Ip { get; init; } = "10.1.2.3";

        public string? Method { get; init; }

        public string? Path { get; init; }

        public string? Host { get; init; }

        public (string Name, string Value)[] Headers { get; init; } = [];

        public AuthorizationRequest Build() => new()
        {
            WorkloadNamespace = "foo",
            WorkloadLabels = new Dictionary<string, string> { ["app"] = "web", ["version"] = "v1" },
            SourcePrincipal = Principal,
            SourceNamespace = Principal is null ? null : "bar",
            SourceAddress = Ip is null ? null : IPAddress.Parse(Ip),
            DestinationPort = 8080,
            Http = Method is null ? null : new HttpRequestAttributes
            {
                Method = Method,
                Path = Path!,
                Host = Host,
                Headers = Headers.ToDictionary(h => h.Name, h => h.Value, StringComparer.OrdinalIgnoreCase),
            },
        };
    }
}
