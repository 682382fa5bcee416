namespace Beemesh.Netstack.Tcp;

/// <summary>
/// Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4): a is "less than" b when the signed
/// 32-bit difference is negative, which is valid while the two are within 2^31 of each other.
/// </summary>
internal static class TcpSeq
{
    public static int Diff(uint a, uint b) => (int)(a - b);
    public static bool Lt(uint a, uint b) => (int)(a - b) < 0;
    public static bool Le(uint a, uint b) => (int)(a - b) <= 0;
    public static bool Gt(uint a, uint b) => (int)(a - b) > 0;
    public static bool Ge(uint a, uint b) => (int)(a - b) >= 0;
    public static uint Max(uint a, uint b) => Gt(a, b) ? a : b;
    public static uint Min(uint a, uint b) => Lt(a, b) ? a : b;
}
