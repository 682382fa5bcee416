namespace Beemesh.Netstack.Dhcp;

/// <summary>
/// Walks the options field of a DHCP message (RFC 2132 §2). Pad octets are skipped, End stops
/// the walk, and an option whose length runs past the buffer stops it too and sets
/// <see cref="IsTruncated"/>. Every step moves forward by at least one byte, so the walk is
/// bounded by the buffer length and never reads outside it.
/// </summary>
public ref struct DhcpOptionEnumerator
{
    private readonly ReadOnlySpan<byte> _options;
    private int _offset;
    private DhcpOption _current;
    private bool _done;

    /// <summary>Creates an enumerator over raw option bytes (everything after the magic cookie).</summary>
    /// <param name="options">The options field.</param>
    public DhcpOptionEnumerator(ReadOnlySpan<byte> options)
    {
        _options = options;
        _offset = 0;
        _current = default;
        _done = false;
        IsTruncated = false;
        SawEnd = false;
    }

    /// <summary>The option at the current position; valid after <see cref="MoveNext"/> returned true.</summary>
    public readonly DhcpOption Current => _current;

    /// <summary>True once the walk met an option whose length octet or data ran past the buffer.</summary>
    public bool IsTruncated { get; private set; }

    /// <summary>True once the walk stopped at an End option (code 255).</summary>
    public bool SawEnd { get; private set; }

    /// <summary>Returns this enumerator so it can be used in <c>foreach</c>.</summary>
    public readonly DhcpOptionEnumerator GetEnumerator() => this;

    /// <summary>Advances to the next option other than Pad.</summary>
    /// <returns>False at End, at the end of the buffer, or at a truncated option.</returns>
    public bool MoveNext()
    {
        if (_done)
        {
            return false;
        }

        while (_offset < _options.Length)
        {
            byte code = _options[_offset];
            if (code == (byte)DhcpOptionCode.Pad)
            {
                _offset++;
                continue;
            }

            if (code == (byte)DhcpOptionCode.End)
            {
                SawEnd = true;
                _done = true;
                return false;
            }

            if (_offset + 1 >= _options.Length)
            {
                return Truncated();
            }

            int length = _options[_offset + 1];
            int dataStart = _offset + 2;
            if (dataStart + length > _options.Length)
            {
                return Truncated();
            }

            _current = new DhcpOption(code, _options.Slice(dataStart, length));
            _offset = dataStart + length;
            return true;
        }

        _done = true;
        return false;
    }

    private bool Truncated()
    {
        IsTruncated = true;
        _done = true;
        return false;
    }
}
