namespace Beemesh.Netstack.Tests.Wire;

/// <summary>Turns hex dumps (spaces and newlines allowed) into bytes.</summary>
internal static class Hex
{
    public static byte[] Bytes(string hex) =>
        Convert.FromHexString(string.Concat(hex.Where(c => !char.IsWhiteSpace(c))));
}
