namespace Beemesh.Identity.WorkloadApi;

/// <summary>
/// When to replace an SVID: at half its lifetime, moved by a uniform jitter of up to ±10% of that
/// half-life (SPIRE's rule), so workloads started together do not all renew at the same instant
/// and a renewal always happens well before expiry.
/// </summary>
public static class SvidRotation
{
    /// <summary>Fraction of the half-life by which the rotation time may move either way.</summary>
    public const double JitterFraction = 0.10;

    /// <summary>The rotation time for an SVID valid from <paramref name="notBefore"/> to <paramref name="notAfter"/>.</summary>
    public static DateTimeOffset RotationTime(DateTimeOffset notBefore, DateTimeOffset notAfter, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        TimeSpan halfLife = (notAfter - notBefore) / 2;
        double jitter = ((random.NextDouble() * 2) - 1) * JitterFraction;
        return notBefore + halfLife + (halfLife * jitter);
    }
}
