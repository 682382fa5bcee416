using System.Globalization;

namespace Beemesh.Authorization;

/// <summary>Port numbers as written in policies: decimal 1–65535, no sign, no spaces.</summary>
internal static class PortNumber
{
    /// <summary>Parses a port; false for anything else (names such as "http" included).</summary>
    public static bool TryParse(string text, out int port) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is >= 1 and <= 65535;
}
