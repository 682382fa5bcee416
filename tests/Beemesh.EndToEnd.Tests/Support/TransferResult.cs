namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>One finished bulk transfer as the host saw it.</summary>
/// <param name="Bytes">Bytes moved.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of those bytes.</param>
/// <param name="Elapsed">From accept to the end of the stream.</param>
public sealed record TransferResult(long Bytes, string Sha256, TimeSpan Elapsed)
{
    /// <summary>Rate in megabytes (10^6) per second.</summary>
    public double MegabytesPerSecond => Bytes / Elapsed.TotalSeconds / 1e6;

    /// <summary>"N bytes in T s = R MB/s (G Gbit/s)".</summary>
    public override string ToString() =>
        $"{Bytes} bytes in {Elapsed.TotalSeconds:F1} s = {MegabytesPerSecond:F0} MB/s ({MegabytesPerSecond * 8 / 1000:F2} Gbit/s)";
}
