namespace Beemesh.Netstack.Wire;

/// <summary>
/// The TCP options Beemesh understands, parsed from or emitted into a TCP header.
/// A value type with no heap references so the hot path allocates nothing; absent options
/// are marked by their <c>Has*</c> flag (or <see cref="Mss"/> == 0).
/// </summary>
public struct TcpOptions : IEquatable<TcpOptions>
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

    /// <summary>Adds a SACK block when there is room for it (at most four); returns false when full.</summary>
    public bool TryAddSack(SackBlock block)
    {
        if (SackCount is < 0 or >= 4)
        {
            return false;
        }

        Sack[SackCount++] = block;
        return true;
    }

    /// <summary>Field-wise equality; only the first <see cref="SackCount"/> SACK blocks take part.</summary>
    public readonly bool Equals(TcpOptions other)
    {
        if (Mss != other.Mss || HasWindowScale != other.HasWindowScale || WindowScale != other.WindowScale
            || SackPermitted != other.SackPermitted || HasTimestamp != other.HasTimestamp || TsVal != other.TsVal
            || TsEcr != other.TsEcr || SackCount != other.SackCount)
        {
            return false;
        }

        for (int i = 0; i < Math.Clamp(SackCount, 0, 4); i++)
        {
            if (Sack[i] != other.Sack[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <inheritdoc/>
    public override readonly bool Equals(object? obj) => obj is TcpOptions other && Equals(other);

    /// <inheritdoc/>
    public override readonly int GetHashCode() => HashCode.Combine(Mss, WindowScale, SackPermitted, TsVal, TsEcr, SackCount);

    /// <summary>Field-wise equality.</summary>
    public static bool operator ==(TcpOptions left, TcpOptions right) => left.Equals(right);

    /// <summary>Field-wise inequality.</summary>
    public static bool operator !=(TcpOptions left, TcpOptions right) => !left.Equals(right);
}
