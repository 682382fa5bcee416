using Beemesh.Authorization;

namespace Beemesh.Authorization.Tests;

public sealed class KubernetesNamesTests
{
    [Theory]
    [InlineData("a", true)]
    [InlineData("web-1", true)]
    [InlineData("0abc", true)]
    [InlineData("", false)]
    [InlineData("-a", false)]
    [InlineData("a-", false)]
    [InlineData("A", false)]
    [InlineData("a.b", false)]
    [InlineData("a/b", false)]
    [InlineData("a_b", false)]
    [InlineData("a\nb", false)]
    [InlineData("é", false)]
    public void Labels(string name, bool valid) => Assert.Equal(valid, KubernetesNames.IsLabel(name));

    [Fact]
    public void LabelLengthIs63()
    {
        Assert.True(KubernetesNames.IsLabel(new string('a', 63)));
        Assert.False(KubernetesNames.IsLabel(new string('a', 64)));
    }

    [Theory]
    [InlineData("deny-all", true)]
    [InlineData("a.b.c", true)]
    [InlineData("a..b", false)]
    [InlineData(".a", false)]
    [InlineData("a.", false)]
    [InlineData("a.-b", false)]
    [InlineData("a/b", false)]
    [InlineData("Deny", false)]
    public void Subdomains(string name, bool valid) => Assert.Equal(valid, KubernetesNames.IsSubdomain(name));

    [Fact]
    public void SubdomainLengthIs253()
    {
        string name = string.Join('.', Enumerable.Repeat(new string('a', 63), 4))[..253].TrimEnd('.');
        Assert.True(KubernetesNames.IsSubdomain(name));
        Assert.False(KubernetesNames.IsSubdomain(name + "aa"));
        Assert.False(KubernetesNames.IsSubdomain(null));
    }

    [Fact]
    public void RefusalQuotesTheRuleAndEscapesTheName()
    {
        string refusal = KubernetesNames.CheckLabel("name", "bad\nname\"")!;
        Assert.Equal("name \"bad\\u000aname\\u0022\" is invalid: it must be " + KubernetesNames.LabelRule, refusal);
        Assert.DoesNotContain('\n', refusal);
        Assert.Null(KubernetesNames.CheckSubdomain("policy name", "ok.name"));
    }

    [Theory]
    [InlineData("name: \"a/b\"", "metadata.name", "DNS-1123 subdomain")]
    [InlineData("name: \"x\\ny\"", "metadata.name", "DNS-1123 subdomain")]
    [InlineData("name: ok\n  namespace: Prod", "metadata.namespace", "DNS-1123 label")]
    public void PolicyDocumentsWithOddNamesAreRefused(string metadata, string path, string rule)
    {
        string yaml = $"""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              {metadata}
            spec: {"{"}action: DENY, rules: [{"{}"}]{"}"}
            """;
        Assert.False(PolicyLoader.Load(yaml, out _, out IReadOnlyList<PolicyError> errors));
        PolicyError error = Assert.Single(errors);
        Assert.Equal(path, error.Path);
        Assert.Contains(rule, error.Message, StringComparison.Ordinal);
    }
}
