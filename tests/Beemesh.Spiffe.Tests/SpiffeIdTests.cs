using Beemesh.Spiffe;

namespace Beemesh.Spiffe.Tests;

public sealed class SpiffeIdTests
{
    [Theory]
    [InlineData("spiffe://example.org", "example.org", "")]
    [InlineData("spiffe://example.org/ns/default/sa/web", "example.org", "/ns/default/sa/web")]
    [InlineData("spiffe://a-b_c.d/X.y-z_0", "a-b_c.d", "/X.y-z_0")]
    public void ParsesValidIds(string text, string trustDomain, string path)
    {
        Assert.True(SpiffeId.TryParse(text, out SpiffeId? id));
        Assert.Equal(trustDomain, id!.TrustDomain);
        Assert.Equal(path, id.Path);
        Assert.Equal(text, id.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("spiffe://")]
    [InlineData("http://example.org/a")]
    [InlineData("spiffe://Example.org/a")]
    [InlineData("spiffe://example.org:8080/a")]
    [InlineData("spiffe://user@example.org/a")]
    [InlineData("spiffe://example.org/")]
    [InlineData("spiffe://example.org//a")]
    [InlineData("spiffe://example.org/./a")]
    [InlineData("spiffe://example.org/a/..")]
    [InlineData("spiffe://example.org/a?q=1")]
    [InlineData("spiffe://example.org/a#f")]
    [InlineData("spiffe://example.org/a b")]
    public void RejectsInvalidIds(string text) => Assert.False(SpiffeId.TryParse(text, out _));

    [Fact]
    public void RejectsOverlongIds() =>
        Assert.False(SpiffeId.TryParse("spiffe://example.org/" + new string('a', 2048), out _));
}
