namespace Beemesh.Netstack.Wire;

/// <summary>
/// The TCP options Beemesh understands, parsed from or emitted into a TCP header.
/// A value type with no heap references so the hot path allocates nothing; absent options
/// are marked by their <c>Has*</c> flag (or <see cref="Mss"/> == 0).
/// </summary>
public struct TcpOptions
{
    /// <summary>Maximum segment size (RFC 9293 §3.7.1); 0 = absent. Only meaningful on SYN.</summary>
    public ushort Mss;

    /// <summary>True when the window scale option (RFC 7323 §2) is present.</summary>
    public bool HasWindowScale;

    /// <summary>Shift count from the window scale option; clamp to 14 on use (RFC 7323 §2.3).</summary>
    public byte WindowScale;

    /// <summary>SACK-permitted option (RFC 2018) present. Only meaningful on SYN.</summary>
    public bool SackPermitted;

    /// <summary>True when the timestamps option (RFC 7323 §3) is present.</summary>
    public bool HasTimestamp;

    /// <summary>TSval of the timestamps option.</summary>
    public uint TsVal;

    /// <summary>TSecr of the timestamps option.</summary>
    public uint TsEcr;

    /// <summary>Number of valid entries in <see cref="Sack"/> (0..4).</summary>
    public int SackCount;

    /// <summary>SACK blocks; only the first <see cref="SackCount"/> are valid.</summary>
    public SackBlocks Sack;

    /// <summary>Inline storage for up to four SACK blocks (the most that fit in 40 option bytes).</summary>
    [System.Runtime.CompilerServices.InlineArray(4)]
    public struct SackBlocks
    {
        private SackBlock _element0;
    }
}
