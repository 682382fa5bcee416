using System.Net.Quic;

namespace Beemesh.Sidecar.Tests.Tunnel.Quic;

/// <summary>Skips a test that needs libmsquic where it is missing, saying so.</summary>
internal static class QuicAvailability
{
    public const string SkipReason = "libmsquic not found: QUIC tests skipped; install libmsquic from Microsoft's package repository";

    public static void Require() => Skip.IfNot(QuicConnection.IsSupported, SkipReason);
}
