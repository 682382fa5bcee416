namespace Beemesh.State.Eventual;

/// <summary>
/// One key's last-writer-wins register: the value of the write with the greatest
/// <see cref="Stamp"/>, or a tombstone (<see cref="Value"/> null) for a delete. Immutable;
/// <see cref="Value"/> is never changed after construction.
/// </summary>
/// <param name="Key">The scoped key (<c>appid||key</c>).</param>
/// <param name="Value">The stored bytes, or null for a tombstone.</param>
/// <param name="Stamp">The hybrid logical clock reading of the write.</param>
/// <param name="ExpiresAtMilliseconds">Unix milliseconds after which the value reads as absent; 0 for never.</param>
public sealed record StateEntry(string Key, byte[]? Value, HybridTimestamp Stamp, long ExpiresAtMilliseconds)
{
    /// <summary>Whether this is a delete's tombstone.</summary>
    public bool IsTombstone => Value is null;

    /// <summary>Whether the value reads as absent at <paramref name="nowMilliseconds"/>.</summary>
    public bool IsAbsentAt(long nowMilliseconds) =>
        Value is null || (ExpiresAtMilliseconds != 0 && nowMilliseconds >= ExpiresAtMilliseconds);

    /// <summary>
    /// Bytes this entry is charged against a store's budget: key (UTF-16), value and a fixed 160
    /// bytes for the objects and the dictionary slot around them, at or above what the heap holds
    /// (a million small keys measured 191 bytes each on the heap, charged 203).
    /// </summary>
    public long Size => (Key.Length * 2L) + (Value?.Length ?? 0) + 160;

    /// <summary>
    /// The winner of two writes to the same key: the greater stamp. Equal stamps come from the same
    /// write on the same replica; the value bytes still decide, so the choice never depends on the
    /// order of the arguments (merge stays commutative even for a forged duplicate).
    /// </summary>
    public static StateEntry Winner(StateEntry a, StateEntry b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        int byStamp = a.Stamp.CompareTo(b.Stamp);
        if (byStamp != 0)
        {
            return byStamp > 0 ? a : b;
        }

        int byValue = CompareValues(a, b);
        return byValue >= 0 ? a : b;
    }

    private static int CompareValues(StateEntry a, StateEntry b)
    {
        if (a.Value is null || b.Value is null)
        {
            // A tombstone beats a value with the same stamp.
            int tomb = (a.Value is null).CompareTo(b.Value is null);
            return tomb != 0 ? tomb : a.ExpiresAtMilliseconds.CompareTo(b.ExpiresAtMilliseconds);
        }

        int bytes = a.Value.AsSpan().SequenceCompareTo(b.Value);
        return bytes != 0 ? bytes : a.ExpiresAtMilliseconds.CompareTo(b.ExpiresAtMilliseconds);
    }
}
