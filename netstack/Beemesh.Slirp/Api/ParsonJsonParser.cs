using System.Buffers;
using System.Globalization;
using System.Text;

namespace Beemesh.Slirp.Api;

/// <summary>
/// A JSON reader that accepts and rejects exactly what slirp4netns's API accepts (the parson library
/// it embeds), because the API's replies are a contract: trailing bytes after the first value are
/// ignored, duplicate keys make the request unparsable, numbers follow strtod's decimal form but
/// reject leading zeros, whitespace is C's isspace (vertical tab and form feed included), a UTF-8
/// BOM is skipped, and nesting deeper than 2048 fails. It also tells whether a failure was caused
/// by running out of bytes, so a server can wait for the rest of a request that arrives in pieces.
/// </summary>
internal ref struct ParsonJsonParser
{
    private const int MaxNesting = 2048;
    private readonly ReadOnlySpan<byte> _text;
    private int _pos;
    private bool _hitEnd;

    private ParsonJsonParser(ReadOnlySpan<byte> text)
    {
        _text = text;
        _pos = 0;
        _hitEnd = false;
    }

    /// <summary>
    /// Parses the request as a C string (bytes after the first NUL are ignored, as in C).
    /// Returns Done with the value, NeedMoreData when the bytes end before the value does,
    /// or InvalidData.
    /// </summary>
    public static OperationStatus Parse(ReadOnlySpan<byte> request, out ParsonJsonValue? value)
    {
        int nul = request.IndexOf((byte)0);
        bool terminated = nul >= 0;
        if (terminated)
        {
            request = request[..nul];
        }

        if (request.Length >= 3 && request[0] == 0xEF && request[1] == 0xBB && request[2] == 0xBF)
        {
            request = request[3..];
        }

        var parser = new ParsonJsonParser(request);
        value = parser.ParseValue(0);
        if (value is not null)
        {
            return OperationStatus.Done;
        }

        return parser._hitEnd && !terminated ? OperationStatus.NeedMoreData : OperationStatus.InvalidData;
    }

    private byte Peek()
    {
        if (_pos >= _text.Length)
        {
            _hitEnd = true;
            return 0;
        }

        return _text[_pos];
    }

    private void SkipWhitespace()
    {
        while (Peek() is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\v' or (byte)'\f' or (byte)'\r')
        {
            _pos++;
        }
    }

    private ParsonJsonValue? ParseValue(int nesting)
    {
        if (nesting > MaxNesting)
        {
            return null;
        }

        SkipWhitespace();
        return Peek() switch
        {
            (byte)'{' => ParseObject(nesting + 1),
            (byte)'[' => ParseArray(nesting + 1),
            (byte)'"' => ParseStringValue(),
            (byte)'t' => ParseLiteral("true"u8, ParsonJsonKind.Boolean),
            (byte)'f' => ParseLiteral("false"u8, ParsonJsonKind.Boolean),
            (byte)'n' => ParseLiteral("null"u8, ParsonJsonKind.Null),
            (byte)'-' or (>= (byte)'0' and <= (byte)'9') => ParseNumber(),
            _ => null,
        };
    }

    private ParsonJsonValue? ParseObject(int nesting)
    {
        ParsonJsonValue result = ParsonJsonValue.NewObject();
        _pos++;
        SkipWhitespace();
        if (Peek() == '}')
        {
            _pos++;
            return result;
        }

        while (Peek() != 0)
        {
            string? key = ParseQuoted(out bool hasNul);
            if (key is null || hasNul)
            {
                return null;
            }

            SkipWhitespace();
            if (Peek() != ':')
            {
                return null;
            }

            _pos++;
            ParsonJsonValue? value = ParseValue(nesting);
            if (value is null || result.Get(key) is not null)
            {
                return null;
            }

            result.Members!.Add(new(key, value));
            SkipWhitespace();
            if (Peek() != ',')
            {
                break;
            }

            _pos++;
            SkipWhitespace();
        }

        SkipWhitespace();
        if (Peek() != '}')
        {
            return null;
        }

        _pos++;
        return result;
    }

    private ParsonJsonValue? ParseArray(int nesting)
    {
        _pos++;
        SkipWhitespace();
        if (Peek() == ']')
        {
            _pos++;
            return ParsonJsonValue.Other(ParsonJsonKind.Array);
        }

        while (Peek() != 0)
        {
            if (ParseValue(nesting) is null)
            {
                return null;
            }

            SkipWhitespace();
            if (Peek() != ',')
            {
                break;
            }

            _pos++;
            SkipWhitespace();
        }

        SkipWhitespace();
        if (Peek() != ']')
        {
            return null;
        }

        _pos++;
        return ParsonJsonValue.Other(ParsonJsonKind.Array);
    }

    private ParsonJsonValue? ParseStringValue()
    {
        string? text = ParseQuoted(out bool hasNul);
        if (text is null)
        {
            return null;
        }

        // Values are read back as C strings: an escaped NUL ends them.
        if (hasNul)
        {
            text = text[..text.IndexOf('\0')];
        }

        return ParsonJsonValue.FromString(text);
    }

    private ParsonJsonValue? ParseLiteral(ReadOnlySpan<byte> token, ParsonJsonKind kind)
    {
        for (int i = 0; i < token.Length; i++)
        {
            if (_pos + i >= _text.Length)
            {
                _hitEnd = true;
                return null;
            }

            if (_text[_pos + i] != token[i])
            {
                return null;
            }
        }

        _pos += token.Length;
        return ParsonJsonValue.Other(kind);
    }

    private ParsonJsonValue? ParseNumber()
    {
        // strtod's decimal form: [-] digits [. digits] [e [+-] digits], at least one mantissa digit.
        int start = _pos;
        int i = _pos;
        if (i < _text.Length && _text[i] == '-')
        {
            i++;
        }

        int mantissaDigits = 0;
        while (i < _text.Length && char.IsAsciiDigit((char)_text[i]))
        {
            i++;
            mantissaDigits++;
        }

        if (i < _text.Length && _text[i] == '.')
        {
            int dot = i++;
            while (i < _text.Length && char.IsAsciiDigit((char)_text[i]))
            {
                i++;
                mantissaDigits++;
            }

            if (mantissaDigits == 0)
            {
                i = dot;
            }
        }

        if (mantissaDigits == 0)
        {
            // No conversion: parson keeps the value 0 and does not advance.
            _hitEnd |= i >= _text.Length;
            return ParsonJsonValue.FromNumber(0);
        }

        if (i < _text.Length && (_text[i] == 'e' || _text[i] == 'E'))
        {
            int e = i + 1;
            if (e < _text.Length && (_text[e] == '+' || _text[e] == '-'))
            {
                e++;
            }

            int expDigits = e;
            while (e < _text.Length && char.IsAsciiDigit((char)_text[e]))
            {
                e++;
            }

            if (e > expDigits)
            {
                i = e;
            }
        }

        _hitEnd |= i >= _text.Length;
        ReadOnlySpan<byte> number = _text[start..i];
        if (number.Length > 1 && number[0] == '0' && number[1] != '.')
        {
            return null;
        }

        if (number.Length > 2 && number[0] == '-' && number[1] == '0' && number[2] != '.')
        {
            return null;
        }

        double value = double.Parse(Encoding.ASCII.GetString(number), NumberStyles.Float, CultureInfo.InvariantCulture);
        if (double.IsInfinity(value))
        {
            return null;
        }

        _pos = i;
        return ParsonJsonValue.FromNumber(value);
    }

    /// <summary>A quoted string with escapes processed; null when malformed.</summary>
    private string? ParseQuoted(out bool hasNul)
    {
        hasNul = false;
        if (Peek() != '"')
        {
            return null;
        }

        int contentStart = ++_pos;
        while (true)
        {
            byte b = Peek();
            if (b == 0)
            {
                return null;
            }

            if (b == '"')
            {
                break;
            }

            if (b == '\\')
            {
                _pos++;
                if (Peek() == 0)
                {
                    return null;
                }
            }

            _pos++;
        }

        ReadOnlySpan<byte> content = _text[contentStart.._pos];
        _pos++;
        var output = new List<byte>(content.Length);
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < content.Length; i++)
        {
            byte b = content[i];
            if (b < 0x20)
            {
                return null;
            }

            if (b != '\\')
            {
                output.Add(b);
                continue;
            }

            i++;
            switch (content[i])
            {
                case (byte)'"': output.Add((byte)'"'); break;
                case (byte)'\\': output.Add((byte)'\\'); break;
                case (byte)'/': output.Add((byte)'/'); break;
                case (byte)'b': output.Add((byte)'\b'); break;
                case (byte)'f': output.Add((byte)'\f'); break;
                case (byte)'n': output.Add((byte)'\n'); break;
                case (byte)'r': output.Add((byte)'\r'); break;
                case (byte)'t': output.Add((byte)'\t'); break;
                case (byte)'u':
                    if (!TryHex4(content, i + 1, out int cp))
                    {
                        return null;
                    }

                    i += 4;
                    if (cp is >= 0xDC00 and <= 0xDFFF)
                    {
                        return null;
                    }

                    if (cp is >= 0xD800 and <= 0xDBFF)
                    {
                        if (i + 2 >= content.Length || content[i + 1] != '\\' || content[i + 2] != 'u'
                            || !TryHex4(content, i + 3, out int trail) || trail is < 0xDC00 or > 0xDFFF)
                        {
                            return null;
                        }

                        i += 6;
                        cp = (((cp - 0xD800) & 0x3FF) << 10 | ((trail - 0xDC00) & 0x3FF)) + 0x10000;
                    }

                    if (cp == 0)
                    {
                        hasNul = true;
                    }

                    int written = new Rune(cp).EncodeToUtf8(utf8);
                    for (int k = 0; k < written; k++)
                    {
                        output.Add(utf8[k]);
                    }

                    break;
                default:
                    return null;
            }
        }

        return Encoding.UTF8.GetString(output.ToArray());
    }

    private static bool TryHex4(ReadOnlySpan<byte> text, int start, out int value)
    {
        value = 0;
        if (start + 4 > text.Length)
        {
            return false;
        }

        for (int i = start; i < start + 4; i++)
        {
            int digit = HexValue(text[i]);
            if (digit < 0)
            {
                return false;
            }

            value = (value << 4) | digit;
        }

        return true;
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}
