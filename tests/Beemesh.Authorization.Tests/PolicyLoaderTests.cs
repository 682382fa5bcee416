using System.Net;

namespace Beemesh.Authorization.Tests;

public sealed class PolicyLoaderTests
{
    private const string Header = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: foo\n";

    [Fact]
    public void LoadsEveryFieldOfAMultiDocumentFile()
    {
        const string Yaml = """
            # leading comment and an empty document
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: httpbin
              namespace: foo
              labels:
                team: web
            spec:
              selector:
                matchLabels:
                  app: httpbin
                  version: v1
              action: ALLOW
              rules:
              - from:
                - source:
                    principals: ["cluster.local/ns/default/sa/sleep"]
                    notPrincipals: ["*/sa/evil"]
                    namespaces: ["dev*"]
                    notNamespaces: ["*-test"]
                    ipBlocks: ["10.0.0.0/8", "1.2.3.4"]
                    notIpBlocks: ["10.9.0.0/16"]
                to:
                - operation:
                    ports: ["8000", 9000]
                    notPorts: ["15000"]
                    methods: ["GET", "HEAD"]
                    notMethods: ["DELETE"]
                    paths: ["/api/*"]
                    notPaths: ["*/admin"]
                    hosts: ["*.example.com"]
                    notHosts: ["*"]
                when:
                - key: request.headers[X-Version]
                  values: ["v1", "v2"]
                - key: source.ip
                  notValues: ["192.168.0.0/16"]
            ---
            apiVersion: security.istio.io/v1beta1
            kind: AuthorizationPolicy
            metadata:
              name: deny-all
            spec:
              action: DENY
              rules:
              - {}
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: allow-nothing
              namespace: istio-system
            spec: {}
            ---
            """;

        Assert.True(PolicyLoader.Load(Yaml, out IReadOnlyList<AuthorizationPolicy> policies, out IReadOnlyList<PolicyError> errors), string.Join("\n", errors));
        Assert.Empty(errors);
        Assert.Equal(["foo/httpbin", "default/deny-all", "istio-system/allow-nothing"], policies.Select(p => p.ToString()));

        AuthorizationPolicy httpbin = policies[0];
        Assert.Equal(3, httpbin.SourceLine);
        Assert.Equal(PolicyAction.Allow, httpbin.Action);
        Assert.Equal(new Dictionary<string, string> { ["app"] = "httpbin", ["version"] = "v1" }, httpbin.Selector);
        PolicyRule rule = Assert.Single(httpbin.Rules);
        PolicySource source = Assert.Single(rule.From);
        Assert.Equal(new StringMatch[] { Parse("cluster.local/ns/default/sa/sleep") }, source.Principals);
        Assert.Equal(StringMatchKind.Suffix, Assert.Single(source.NotPrincipals).Kind);
        Assert.Equal(StringMatchKind.Prefix, Assert.Single(source.Namespaces).Kind);
        Assert.Equal("-test", Assert.Single(source.NotNamespaces).Value);
        Assert.Equal([IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("1.2.3.4/32")], source.IpBlocks);
        Assert.Equal([IPNetwork.Parse("10.9.0.0/16")], source.NotIpBlocks);
        PolicyOperation operation = Assert.Single(rule.To);
        Assert.Equal([8000, 9000], operation.Ports);
        Assert.Equal([15000], operation.NotPorts);
        Assert.Equal(["GET", "HEAD"], operation.Methods.Select(m => m.Text));
        Assert.Equal(["DELETE"], operation.NotMethods.Select(m => m.Text));
        Assert.Equal(["/api/*"], operation.Paths.Select(m => m.Text));
        Assert.Equal(["*/admin"], operation.NotPaths.Select(m => m.Text));
        Assert.Equal(["*.example.com"], operation.Hosts.Select(m => m.Text));
        Assert.Equal(StringMatchKind.Presence, Assert.Single(operation.NotHosts).Kind);
        Assert.True(operation.HasHttpFields);
        Assert.Equal(2, rule.When.Count);
        Assert.Equal(ConditionAttribute.RequestHeader, rule.When[0].Attribute);
        Assert.Equal("x-version", rule.When[0].HeaderName);
        Assert.Equal(["v1", "v2"], rule.When[0].Values);
        Assert.Equal(ConditionAttribute.SourceIp, rule.When[1].Attribute);
        Assert.Equal(["192.168.0.0/16"], rule.When[1].NotValues);
        Assert.True(rule.HasHttpFields);

        AuthorizationPolicy denyAll = policies[1];
        Assert.Equal(PolicyAction.Deny, denyAll.Action);
        PolicyRule empty = Assert.Single(denyAll.Rules);
        Assert.Empty(empty.From);
        Assert.Empty(empty.To);
        Assert.Empty(empty.When);
        Assert.Empty(denyAll.Selector);

        Assert.Equal(PolicyAction.Allow, policies[2].Action);
        Assert.Empty(policies[2].Rules);
    }

    [Theory]
    [InlineData("")]
    [InlineData("# only a comment\n")]
    [InlineData("---\n---\n")]
    public void EmptyFilesLoadNoPolicies(string yaml)
    {
        Assert.True(PolicyLoader.Load(yaml, out IReadOnlyList<AuthorizationPolicy> policies, out IReadOnlyList<PolicyError> errors));
        Assert.Empty(policies);
        Assert.Empty(errors);
    }

    [Fact]
    public void PortNameIsRefusedWithLineColumnAndPath()
    {
        string yaml = Header + """
            spec:
              rules:
              - to:
                - operation:
                    ports: ["8080", "http"]
            """;

        AssertErrors(yaml, "line 10, column 25: spec.rules[0].to[0].operation.ports[1]: \"http\" is not a port number");
    }

    public static TheoryData<string, string> BadSpecs() => new()
    {
        {
            "spec:\n  action: ALOW\n",
            "line 7, column 11: spec.action: \"ALOW\" is not an action (expected ALLOW, DENY or AUDIT)"
        },
        {
            "spec:\n  action:\n",
            "line 7, column 10: spec.action: empty action (expected ALLOW, DENY or AUDIT; omit the field for ALLOW)"
        },
        {
            "spec:\n  action: \"\"\n",
            "line 7, column 11: spec.action: empty action (expected ALLOW, DENY or AUDIT; omit the field for ALLOW)"
        },
        {
            "spec:\n  action: CUSTOM\n",
            "line 7, column 11: spec.action: CUSTOM is not supported (expected ALLOW, DENY or AUDIT)"
        },
        {
            "spec:\n  action: [ALLOW]\n",
            "line 7, column 11: spec.action: expected a string, found a list"
        },
        {
            "spec:\n  actions: ALLOW\n",
            "line 7, column 3: spec.actions: unknown field (expected one of: selector, action, rules)"
        },
        {
            "spec:\n  provider: {name: ext}\n",
            "line 7, column 3: spec.provider: not supported (it belongs to the CUSTOM action, which Beemesh does not implement)"
        },
        {
            "spec:\n  rules:\n    from: []\n",
            "line 8, column 5: spec.rules: expected a list, found a mapping"
        },
        {
            "spec:\n  rules:\n  -\n",
            "line 8, column 4: spec.rules[0]: empty rule (write {} for a rule that matches everything)"
        },
        {
            "spec:\n  rules:\n  - from: []\n",
            "line 8, column 11: spec.rules[0].from: must not be empty (omit the field to match any)"
        },
        {
            "spec:\n  rules:\n  - from:\n    - source: {}\n",
            "line 9, column 15: spec.rules[0].from[0].source: must set at least one field (omit `from` to match any source)"
        },
        {
            "spec:\n  rules:\n  - from:\n    - {}\n",
            "line 9, column 7: spec.rules[0].from[0].source: missing required field"
        },
        {
            "spec:\n  rules:\n  - from:\n    - source:\n        principal: [a]\n",
            "line 10, column 9: spec.rules[0].from[0].source.principal: unknown field (expected one of: principals, notPrincipals, namespaces, notNamespaces, ipBlocks, notIpBlocks)"
        },
        {
            "spec:\n  rules:\n  - from:\n    - source:\n        principals: cluster.local/ns/a/sa/b\n",
            "line 10, column 21: spec.rules[0].from[0].source.principals: expected a list, found the value \"cluster.local/ns/a/sa/b\""
        },
        {
            "spec:\n  rules:\n  - from:\n    - source:\n        principals: [{a: b}]\n",
            "line 10, column 22: spec.rules[0].from[0].source.principals[0]: expected a string, found a mapping"
        },
        {
            "spec:\n  rules:\n  - from:\n    - source:\n        principals: [\"a*b\"]\n",
            "line 10, column 22: spec.rules[0].from[0].source.principals[0]: \"a*b\": '*' is allowed only alone, at the start or at the end"
        },
        {
            "spec:\n  rules:\n  - from:\n    - source:\n        namespaces: [\"\"]\n",
            "line 10, column 22: spec.rules[0].from[0].source.namespaces[0]: empty value (use \"*\" to require a non-empty value)"
        },
        {
            "spec:\n  rules:\n  - from:\n    - source:\n        ipBlocks: [\"10.0.0.0/33\"]\n",
            "line 10, column 20: spec.rules[0].from[0].source.ipBlocks[0]: \"10.0.0.0/33\": prefix length 33 is longer than 32 bits"
        },
        {
            "spec:\n  rules:\n  - from:\n    - source:\n        notIpBlocks: [\"10.0.0.*\"]\n",
            "line 10, column 23: spec.rules[0].from[0].source.notIpBlocks[0]: \"10.0.0.*\" is not an IP address or CIDR range"
        },
        {
            "spec:\n  rules:\n  - from:\n    - source:\n        requestPrincipals: [\"*\"]\n",
            "line 10, column 9: spec.rules[0].from[0].source.requestPrincipals: not supported (JWT request authentication is not implemented)"
        },
        {
            "spec:\n  rules:\n  - to:\n    - operation:\n        ports: [\"0\"]\n",
            "line 10, column 17: spec.rules[0].to[0].operation.ports[0]: \"0\" is not a port number"
        },
        {
            "spec:\n  rules:\n  - to:\n    - operation:\n        paths: [\"/api/{*}\"]\n",
            "line 10, column 17: spec.rules[0].to[0].operation.paths[0]: \"/api/{*}\": path templates ({*}, {**}) are not supported"
        },
        {
            "spec:\n  rules:\n  - when:\n    - key: request.auth.claims[iss]\n      values: [x]\n",
            "line 9, column 12: spec.rules[0].when[0].key: condition key \"request.auth.claims[iss]\" is not supported (supported: source.ip, source.namespace, source.principal, destination.port, request.headers[<name>])"
        },
        {
            "spec:\n  rules:\n  - when:\n    - key: source.namespace\n",
            "line 9, column 7: spec.rules[0].when[0]: at least one of values or notValues must be set for key \"source.namespace\""
        },
        {
            "spec:\n  rules:\n  - when:\n    - key: destination.port\n      values: [\"https\"]\n",
            "line 10, column 16: spec.rules[0].when[0].values[0]: \"https\" is not a port number"
        },
        {
            "spec:\n  rules:\n  - when:\n    - values: [x]\n",
            "line 9, column 7: spec.rules[0].when[0].key: missing required field"
        },
        {
            "spec:\n  selector:\n    labels: {app: x}\n",
            "line 8, column 5: spec.selector.labels: unknown field (expected one of: matchLabels)"
        },
        {
            "spec:\n  selector:\n    matchLabels: [app]\n",
            "line 8, column 18: spec.selector.matchLabels: expected a mapping, found a list"
        },
        {
            "spec: []\n",
            "line 6, column 7: spec: expected a mapping, found a list"
        },
        {
            "status: {}\n",
            "line 6, column 1: status: unknown field (expected one of: apiVersion, kind, metadata, spec)"
        },
    };

    [Theory]
    [MemberData(nameof(BadSpecs))]
    public void RefusesBadSpecs(string spec, string expected) => AssertErrors(Header + spec, expected);

    [Fact]
    public void RefusesOtherKinds()
    {
        AssertErrors(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n",
            "line 1, column 13: apiVersion: \"apps/v1\" is not supported (expected security.istio.io/v1 or security.istio.io/v1beta1)",
            "line 2, column 7: kind: \"Deployment\" is not supported (only AuthorizationPolicy)");
    }

    [Fact]
    public void RefusesMissingHeaderFields()
    {
        AssertErrors(
            "metadata:\n  namespace: foo\n",
            "line 1, column 1: apiVersion: missing required field",
            "line 1, column 1: kind: missing required field",
            "line 2, column 3: metadata.name: missing required field");
    }

    [Fact]
    public void RefusesEmptyName()
    {
        AssertErrors(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: \"\"\n",
            "line 4, column 9: metadata.name: must not be empty");
    }

    [Fact]
    public void RefusesUnknownMetadata()
    {
        AssertErrors(
            Header + "  uid: 1234\n",
            "line 6, column 3: metadata.uid: unknown field (expected one of: name, namespace, labels, annotations)");
    }

    [Fact]
    public void RefusesYamlSyntaxErrors()
    {
        Assert.False(PolicyLoader.Load(Header + "spec:\n  rules: [\n", out IReadOnlyList<AuthorizationPolicy> policies, out IReadOnlyList<PolicyError> errors));
        Assert.Empty(policies);
        PolicyError error = Assert.Single(errors);
        Assert.Equal(8, error.Line);
        Assert.Equal(string.Empty, error.Path);
        Assert.StartsWith("YAML syntax error: ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ScannerFailuresWithoutAYamlExceptionBecomeErrors()
    {
        // Found by the property test: YamlDotNet's scanner throws InvalidOperationException here.
        Assert.False(PolicyLoader.Load("...\n\0{", out _, out IReadOnlyList<PolicyError> errors));
        Assert.StartsWith("YAML syntax error: ", Assert.Single(errors).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RefusesDuplicateKeys()
    {
        Assert.False(PolicyLoader.Load(Header + "spec:\n  action: DENY\n  action: ALLOW\n", out _, out IReadOnlyList<PolicyError> errors));
        PolicyError error = Assert.Single(errors);
        Assert.Equal(8, error.Line);
        Assert.Contains("Duplicate key", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RefusesAliases()
    {
        AssertErrors(
            Header + "spec:\n  rules:\n  - from: &f\n    - source: {namespaces: [a]}\n    to: *f\n",
            "line 10, column 9: YAML aliases are not supported (*f)");
    }

    [Fact]
    public void RefusesDeepNesting()
    {
        string yaml = Header + "spec: " + new string('[', 10_000) + new string(']', 10_000) + "\n";
        Assert.False(PolicyLoader.Load(yaml, out _, out IReadOnlyList<PolicyError> errors));
        Assert.Equal("nesting deeper than 32 levels", Assert.Single(errors).Message);
    }

    [Fact]
    public void RefusesTheSamePolicyTwice()
    {
        string yaml = Header + "---\n" + Header;
        AssertErrors(yaml, "line 10, column 9: metadata.name: policy \"foo/p\" is already defined at line 4");
    }

    [Fact]
    public void OneBadDocumentRefusesTheWholeFile()
    {
        string yaml = Header + "spec:\n  action: DENY\n---\n" + Header.Replace("name: p", "name: q", StringComparison.Ordinal) + "spec:\n  action: deny\n";
        Assert.False(PolicyLoader.Load(yaml, out IReadOnlyList<AuthorizationPolicy> policies, out IReadOnlyList<PolicyError> errors));
        Assert.Empty(policies);
        Assert.Equal("line 15, column 11: spec.action: \"deny\" is not an action (expected ALLOW, DENY or AUDIT)", Assert.Single(errors).ToString());
    }

    [Fact]
    public void ReportsEveryErrorInOnePass()
    {
        string yaml = Header + "spec:\n  action: NOPE\n  rules:\n  - to:\n    - operation:\n        ports: [\"x\", \"70000\"]\n";
        AssertErrors(
            yaml,
            "line 7, column 11: spec.action: \"NOPE\" is not an action (expected ALLOW, DENY or AUDIT)",
            "line 11, column 17: spec.rules[0].to[0].operation.ports[0]: \"x\" is not a port number",
            "line 11, column 22: spec.rules[0].to[0].operation.ports[1]: \"70000\" is not a port number");
    }

    [Fact]
    public void ConditionCreateRefusesWhatTheLoaderRefuses()
    {
        Assert.Throws<ArgumentException>(() => PolicyCondition.Create("request.auth.claims[iss]", ["x"]));
        Assert.Throws<ArgumentException>(() => PolicyCondition.Create("destination.port", ["http"]));
        Assert.Throws<ArgumentException>(() => PolicyCondition.Create("source.namespace", [], []));
        PolicyCondition condition = PolicyCondition.Create("request.headers[X-A]", ["b*"]);
        Assert.Equal("x-a", condition.HeaderName);
        Assert.True(condition.IsHttpOnly);
    }

    private static StringMatch Parse(string text)
    {
        Assert.True(StringMatch.TryParse(text, out StringMatch match, out string? error), error);
        return match;
    }

    private static void AssertErrors(string yaml, params string[] expected)
    {
        bool ok = PolicyLoader.Load(yaml, out IReadOnlyList<AuthorizationPolicy> policies, out IReadOnlyList<PolicyError> errors);
        Assert.False(ok);
        Assert.Empty(policies);
        Assert.Equal(expected, errors.Select(e => e.ToString()));
    }
}
