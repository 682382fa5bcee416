namespace Beemesh.Netstack.Wire;

/// <summary>
/// Iterates neighbor discovery options (RFC 4861 §4.6): type, length in 8-octet units, data.
/// A zero length or an option running past the buffer stops the iteration and sets <see cref="IsInvalid"/>;
/// RFC 4861 §7.1 says the whole message must then be discarded.
/// </summary>
public ref struct NdpOptionReader
{
    private readonly ReadOnlySpan<byte> _options;
    private int _next;

    /// <summary>Starts before the first option of <paramref name="options"/>.</summary>
    public NdpOptionReader(ReadOnlySpan<byte> options)
    {
        _options = options;
        _next = 0;
        Type = default;
        Current = default;
        IsInvalid = false;
    }

    /// <summary>Type of the current option.</summary>
    public NdpOptionType Type { get; private set; }

    /// <summary>Length of the current option in 8-octet units (never 0).</summary>
    public readonly int LengthUnits => Current.Length / 8;

    /// <summary>The whole current option, type and length bytes included.</summary>
    public ReadOnlySpan<byte> Current { get; private set; }

    /// <summary>True once a malformed option was met.</summary>
    public bool IsInvalid { get; private set; }

    /// <summary>Moves to the next option; false at the end of the list or on a malformed option.</summary>
    public bool MoveNext()
    {
        if (IsInvalid || _next >= _options.Length)
        {
            return false;
        }

        if (_options.Length - _next < 2 || _options[_next + 1] == 0 || _options[_next + 1] * 8 > _options.Length - _next)
        {
            IsInvalid = true;
            Current = default;
            return false;
        }

        int length = _options[_next + 1] * 8;
        Type = (NdpOptionType)_options[_next];
        Current = _options.Slice(_next, length);
        _next += length;
        return true;
    }

    /// <summary>True when every option in <paramref name="options"/> is well formed.</summary>
    public static bool Validate(ReadOnlySpan<byte> options)
    {
        NdpOptionReader reader = new(options);
        while (reader.MoveNext())
        {
        }

        return !reader.IsInvalid;
    }

    /// <summary>
    /// Finds the first source or target link-layer address option and reads its Ethernet address (RFC 2464 §6).
    /// False when absent, malformed, or the list is invalid.
    /// </summary>
    public static bool TryFindLinkLayerAddress(ReadOnlySpan<byte> options, NdpOptionType type, out MacAddress address)
    {
        address = default;
        NdpOptionReader reader = new(options);
        bool found = false;
        while (reader.MoveNext())
        {
            if (!found && reader.Type == type)
            {
                address = MacAddress.ReadFrom(reader.Current[2..]);
                found = true;
            }
        }

        if (reader.IsInvalid)
        {
            address = default;
            return false;
        }

        return found;
    }
}
