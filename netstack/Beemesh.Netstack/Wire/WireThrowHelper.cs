using System.Diagnostics.CodeAnalysis;

namespace Beemesh.Netstack.Wire;

/// <summary>Throws for programming errors on the emit side (a buffer the caller sized wrongly); parsing never throws.</summary>
internal static class WireThrowHelper
{
    [DoesNotReturn]
    public static void BufferTooSmall(string what, int needed, int actual) =>
        throw new ArgumentException($"{what} needs {needed} bytes, buffer has {actual}");
}
