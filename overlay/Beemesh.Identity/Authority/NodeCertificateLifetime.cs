namespace Beemesh.Identity.Authority;

/// <summary>
/// When node certificates (node SVID, node CA) are renewed: at a share of their lifetime
/// (<see cref="DefaultRenewAfter"/>, two thirds, as cert-manager renews by default), so a node that
/// cannot reach the root holder at that moment has a third of the lifetime to retry.
/// </summary>
public static class NodeCertificateLifetime
{
    /// <summary>Default share of a node certificate's lifetime after which it is renewed: 2/3.</summary>
    public const double DefaultRenewAfter = 2.0 / 3.0;

    /// <summary>Null when <paramref name="share"/> is an acceptable renewal share (above 0, below 1); otherwise why not.</summary>
    public static string? CheckRenewAfter(double share) =>
        share is > 0 and < 1 ? null : $"the node certificate renewal point must be a share of the lifetime between 0 and 1 (got {share})";

    /// <summary>The moment a certificate valid from <paramref name="notBefore"/> to <paramref name="notAfter"/> is due for renewal.</summary>
    public static DateTimeOffset RenewalTime(DateTimeOffset notBefore, DateTimeOffset notAfter, double share = DefaultRenewAfter)
    {
        if (notAfter <= notBefore)
        {
            return notBefore;
        }

        return notBefore + ((notAfter - notBefore) * share);
    }

    /// <summary>The renewal moment of <paramref name="certificate"/>.</summary>
    public static DateTimeOffset RenewalTime(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate, double share = DefaultRenewAfter)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return RenewalTime(new DateTimeOffset(certificate.NotBefore.ToUniversalTime()), new DateTimeOffset(certificate.NotAfter.ToUniversalTime()), share);
    }
}
