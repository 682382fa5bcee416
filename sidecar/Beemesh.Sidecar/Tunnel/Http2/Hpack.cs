using System.Buffers;
using System.Text;

namespace Beemesh.Sidecar.Tunnel.Http2;

/// <summary>One header field: name and value as sent (HPACK carries octets; these are Latin-1).</summary>
/// <param name="Name">Field name.</param>
/// <param name="Value">Field value.</param>
public readonly record struct HeaderField(string Name, string Value)
{
    /// <summary>The field's size as HPACK and SETTINGS_MAX_HEADER_LIST_SIZE count it (RFC 7541 section 4.1).</summary>
    public int Size => Name.Length + Value.Length + 32;
}

/// <summary>The HPACK static table (RFC 7541 Appendix A), index 1 to 61.</summary>
public static class HpackStaticTable
{
    /// <summary>Entries; index 0 is unused.</summary>
    internal static readonly HeaderField[] Entries =
    [
        default,
        new(":authority", ""),
        new(":method", "GET"),
        new(":method", "POST"),
        new(":path", "/"),
        new(":path", "/index.html"),
        new(":scheme", "http"),
        new(":scheme", "https"),
        new(":status", "200"),
        new(":status", "204"),
        new(":status", "206"),
        new(":status", "304"),
        new(":status", "400"),
        new(":status", "404"),
        new(":status", "500"),
        new("accept-charset", ""),
        new("accept-encoding", "gzip, deflate"),
        new("accept-language", ""),
        new("accept-ranges", ""),
        new("accept", ""),
        new("access-control-allow-origin", ""),
        new("age", ""),
        new("allow", ""),
        new("authorization", ""),
        new("cache-control", ""),
        new("content-disposition", ""),
        new("content-encoding", ""),
        new("content-language", ""),
        new("content-length", ""),
        new("content-location", ""),
        new("content-range", ""),
        new("content-type", ""),
        new("cookie", ""),
        new("date", ""),
        new("etag", ""),
        new("expect", ""),
        new("expires", ""),
        new("from", ""),
        new("host", ""),
        new("if-match", ""),
        new("if-modified-since", ""),
        new("if-none-match", ""),
        new("if-range", ""),
        new("if-unmodified-since", ""),
        new("last-modified", ""),
        new("link", ""),
        new("location", ""),
        new("max-forwards", ""),
        new("proxy-authenticate", ""),
        new("proxy-authorization", ""),
        new("range", ""),
        new("referer", ""),
        new("refresh", ""),
        new("retry-after", ""),
        new("server", ""),
        new("set-cookie", ""),
        new("strict-transport-security", ""),
        new("transfer-encoding", ""),
        new("user-agent", ""),
        new("vary", ""),
        new("via", ""),
        new("www-authenticate", ""),
    ];

    /// <summary>Number of entries.</summary>
    public const int Count = 61;
}

/// <summary>HPACK integers (RFC 7541 section 5.1).</summary>
public static class HpackInteger
{
    /// <summary>
    /// Decodes an integer with an <paramref name="prefixBits"/>-bit prefix starting at
    /// <paramref name="source"/>[<paramref name="offset"/>]; advances the offset. Truncated input or a
    /// value over 2^31-1 is a COMPRESSION_ERROR.
    /// </summary>
    public static int Decode(ReadOnlySpan<byte> source, ref int offset, int prefixBits)
    {
        if (offset >= source.Length)
        {
            throw Truncated();
        }

        int mask = (1 << prefixBits) - 1;
        int value = source[offset++] & mask;
        if (value < mask)
        {
            return value;
        }

        long total = value;
        int shift = 0;
        while (true)
        {
            if (offset >= source.Length)
            {
                throw Truncated();
            }

            byte b = source[offset++];
            total += (long)(b & 0x7f) << shift;
            if (total > int.MaxValue || shift > 28)
            {
                throw new Http2ConnectionException(Http2ErrorCode.CompressionError, "an HPACK integer over 2^31-1");
            }

            if ((b & 0x80) == 0)
            {
                return (int)total;
            }

            shift += 7;
        }
    }

    /// <summary>Encodes <paramref name="value"/> with the top bits of the first byte set to <paramref name="pattern"/>.</summary>
    public static void Encode(IBufferWriter<byte> output, int value, int prefixBits, byte pattern)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        Span<byte> span = output.GetSpan(6);
        int mask = (1 << prefixBits) - 1;
        if (value < mask)
        {
            span[0] = (byte)(pattern | value);
            output.Advance(1);
            return;
        }

        span[0] = (byte)(pattern | mask);
        int n = 1;
        value -= mask;
        while (value >= 0x80)
        {
            span[n++] = (byte)((value & 0x7f) | 0x80);
            value >>= 7;
        }

        span[n++] = (byte)value;
        output.Advance(n);
    }

    private static Http2ConnectionException Truncated() => new(Http2ErrorCode.CompressionError, "a header block ends inside an HPACK integer");
}

/// <summary>
/// An HPACK decoder (RFC 7541): static and dynamic tables, Huffman-coded strings, table size
/// updates. One per connection (the dynamic table is connection state); every malformed block is
/// a COMPRESSION_ERROR, after which the connection must end.
/// </summary>
public sealed class HpackDecoder
{
    private readonly List<HeaderField> _dynamic = []; // newest last
    private readonly int _maxListSize;
    private int _maxTableSize;
    private int _tableSize;

    /// <summary>
    /// Creates a decoder whose dynamic table may grow to <paramref name="maxTableSize"/> (our
    /// SETTINGS_HEADER_TABLE_SIZE) and which refuses header lists over <paramref name="maxHeaderListSize"/>.
    /// </summary>
    public HpackDecoder(int maxTableSize = Http2Protocol.DefaultHeaderTableSize, int maxHeaderListSize = 64 * 1024)
    {
        _maxTableSize = maxTableSize;
        _maxListSize = maxHeaderListSize;
    }

    /// <summary>The dynamic table's current size (RFC 7541 section 4.1).</summary>
    public int TableSize => _tableSize;

    /// <summary>Entries in the dynamic table.</summary>
    public int TableCount => _dynamic.Count;

    /// <summary>Dynamic table entry <paramref name="index"/> (1: the newest).</summary>
    public HeaderField DynamicEntry(int index) => _dynamic[_dynamic.Count - index];

    /// <summary>Decodes one complete header block.</summary>
    public List<HeaderField> Decode(ReadOnlySpan<byte> block)
    {
        var fields = new List<HeaderField>();
        int listSize = 0;
        int offset = 0;
        bool fieldSeen = false;
        while (offset < block.Length)
        {
            byte b = block[offset];
            HeaderField field;
            if ((b & 0x80) != 0)
            {
                // Indexed header field.
                int index = HpackInteger.Decode(block, ref offset, 7);
                field = Lookup(index);
            }
            else if ((b & 0xc0) == 0x40)
            {
                // Literal with incremental indexing.
                field = ReadLiteral(block, ref offset, 6);
                Add(field);
            }
            else if ((b & 0xe0) == 0x20)
            {
                // Dynamic table size update: only before the first field of a block.
                if (fieldSeen)
                {
                    throw new Http2ConnectionException(Http2ErrorCode.CompressionError, "a dynamic table size update after a header field");
                }

                int size = HpackInteger.Decode(block, ref offset, 5);
                if (size > _maxTableSize)
                {
                    throw new Http2ConnectionException(Http2ErrorCode.CompressionError, $"a dynamic table size update to {size}, over the limit {_maxTableSize}");
                }

                _maxTableSize = size;
                Evict(0);
                continue;
            }
            else
            {
                // Literal without indexing (0000) or never indexed (0001).
                field = ReadLiteral(block, ref offset, 4);
            }

            fieldSeen = true;
            listSize += field.Size;
            if (listSize > _maxListSize)
            {
                throw new Http2ConnectionException(Http2ErrorCode.CompressionError, $"a header list over {_maxListSize} bytes");
            }

            fields.Add(field);
        }

        return fields;
    }

    private HeaderField ReadLiteral(ReadOnlySpan<byte> block, ref int offset, int prefixBits)
    {
        int index = HpackInteger.Decode(block, ref offset, prefixBits);
        string name = index == 0 ? ReadString(block, ref offset) : Lookup(index).Name;
        string value = ReadString(block, ref offset);
        return new HeaderField(name, value);
    }

    private string ReadString(ReadOnlySpan<byte> block, ref int offset)
    {
        if (offset >= block.Length)
        {
            throw new Http2ConnectionException(Http2ErrorCode.CompressionError, "a header block ends before a string");
        }

        bool huffman = (block[offset] & 0x80) != 0;
        int length = HpackInteger.Decode(block, ref offset, 7);
        if (length > block.Length - offset)
        {
            throw new Http2ConnectionException(Http2ErrorCode.CompressionError, $"a string of {length} bytes past the end of the header block");
        }

        ReadOnlySpan<byte> raw = block.Slice(offset, length);
        offset += length;
        if (!huffman)
        {
            return Encoding.Latin1.GetString(raw);
        }

        int max = Huffman.MaxDecodedLength(length);
        if (max > _maxListSize)
        {
            max = _maxListSize + 1;
        }

        byte[] rented = ArrayPool<byte>.Shared.Rent(Math.Max(max, 1));
        try
        {
            int n = Huffman.Decode(raw, rented.AsSpan(0, max));
            return Encoding.Latin1.GetString(rented, 0, n);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private HeaderField Lookup(int index)
    {
        if (index == 0)
        {
            throw new Http2ConnectionException(Http2ErrorCode.CompressionError, "HPACK index 0");
        }

        if (index <= HpackStaticTable.Count)
        {
            return HpackStaticTable.Entries[index];
        }

        int dynamic = index - HpackStaticTable.Count;
        if (dynamic > _dynamic.Count)
        {
            throw new Http2ConnectionException(Http2ErrorCode.CompressionError, $"HPACK index {index} past the dynamic table ({_dynamic.Count} entries)");
        }

        return _dynamic[_dynamic.Count - dynamic];
    }

    private void Add(HeaderField field)
    {
        if (field.Size > _maxTableSize)
        {
            // An entry larger than the table empties it and is not added (RFC 7541 section 4.4).
            _dynamic.Clear();
            _tableSize = 0;
            return;
        }

        Evict(field.Size);
        _dynamic.Add(field);
        _tableSize += field.Size;
    }

    private void Evict(int room)
    {
        int evict = 0;
        while (_tableSize + room > _maxTableSize && evict < _dynamic.Count)
        {
            _tableSize -= _dynamic[evict].Size;
            evict++;
        }

        _dynamic.RemoveRange(0, evict);
    }
}

/// <summary>
/// A stateless HPACK encoder: fields the static table holds exactly are indexed, every other field
/// is a literal without indexing (with the static table's name index when it has the name), no
/// Huffman coding. It never touches the dynamic table, so the peer's table size does not matter.
/// </summary>
public static class HpackEncoder
{
    /// <summary>Encodes <paramref name="fields"/> as one header block.</summary>
    public static void Encode(IBufferWriter<byte> output, ReadOnlySpan<HeaderField> fields)
    {
        ArgumentNullException.ThrowIfNull(output);
        foreach (HeaderField field in fields)
        {
            int nameIndex = 0;
            int exact = 0;
            for (int i = 1; i <= HpackStaticTable.Count && exact == 0; i++)
            {
                HeaderField entry = HpackStaticTable.Entries[i];
                if (entry.Name == field.Name)
                {
                    if (nameIndex == 0)
                    {
                        nameIndex = i;
                    }

                    if (entry.Value == field.Value && entry.Value.Length != 0)
                    {
                        exact = i;
                    }
                }
            }

            if (exact != 0)
            {
                HpackInteger.Encode(output, exact, 7, 0x80);
                continue;
            }

            HpackInteger.Encode(output, nameIndex, 4, 0x00);
            if (nameIndex == 0)
            {
                WriteString(output, field.Name);
            }

            WriteString(output, field.Value);
        }
    }

    private static void WriteString(IBufferWriter<byte> output, string value)
    {
        int length = Encoding.Latin1.GetByteCount(value);
        HpackInteger.Encode(output, length, 7, 0x00);
        Span<byte> span = output.GetSpan(length);
        Encoding.Latin1.GetBytes(value, span);
        output.Advance(length);
    }
}
