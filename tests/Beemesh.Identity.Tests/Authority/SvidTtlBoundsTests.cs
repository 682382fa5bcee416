using Beemesh.Identity.Authority;

namespace Beemesh.Identity.Tests.Authority;

public sealed class SvidTtlBoundsTests
{
    [Fact]
    public void CheckX509SvidTtl_AcceptsTheRangeAndExplainsTheRest()
    {
        Assert.Null(CertificateAuthority.CheckX509SvidTtl(CertificateAuthority.DefaultX509SvidTtl));
        Assert.Null(CertificateAuthority.CheckX509SvidTtl(CertificateAuthority.MinimumX509SvidTtl));
        Assert.Null(CertificateAuthority.CheckX509SvidTtl(TimeSpan.FromSeconds(20)));
        Assert.Contains("at least 10 s", CertificateAuthority.CheckX509SvidTtl(TimeSpan.FromSeconds(9)), StringComparison.Ordinal);
        Assert.Contains("at most", CertificateAuthority.CheckX509SvidTtl(TimeSpan.FromDays(31)), StringComparison.Ordinal);
    }
}
