using System.Net;
using System.Net.Sockets;

namespace Beemesh.Slirp.Cli;

/// <summary>
/// C library text conversions reproduced exactly (glibc, C locale), because slirp4netns's accept/reject
/// decisions are defined by them: <c>inet_pton(AF_INET)</c> is stricter than <see cref="IPAddress.TryParse(string, out IPAddress)"/>
/// (exactly four decimal parts, no leading zeros), <c>strtol</c> allows leading blanks and a sign,
/// and <c>sscanf("%x")</c> allows a sign and a 0x prefix.
/// </summary>
internal static class CText
{
    /// <summary>C isspace in the C locale.</summary>
    public static bool IsSpace(char c) => c is ' ' or '\t' or '\n' or '\v' or '\f' or '\r';

    /// <summary>glibc inet_pton4: four dot-separated decimal octets, each 0-255, no leading zeros.</summary>
    public static bool TryParseIpv4(string text, out IPAddress address)
    {
        address = IPAddress.None;
        Span<byte> octets = stackalloc byte[4];
        int count = 0;
        int current = 0;
        bool sawDigit = false;
        foreach (char ch in text)
        {
            if (ch is >= '0' and <= '9')
            {
                if (sawDigit && current == 0)
                {
                    return false;
                }

                current = (current * 10) + (ch - '0');
                if (current > 255)
                {
                    return false;
                }

                if (!sawDigit)
                {
                    if (++count > 4)
                    {
                        return false;
                    }

                    sawDigit = true;
                }

                octets[count - 1] = (byte)current;
            }
            else if (ch == '.' && sawDigit)
            {
                if (count == 4)
                {
                    return false;
                }

                current = 0;
                sawDigit = false;
            }
            else
            {
                return false;
            }
        }

        if (count < 4 || !sawDigit)
        {
            return false;
        }

        address = new IPAddress(octets);
        return true;
    }

    /// <summary>inet_pton(AF_INET6): a plain textual IPv6 address (no zone, no brackets, no prefix).</summary>
    public static bool TryParseIpv6(string text, out IPAddress address)
    {
        address = IPAddress.IPv6None;
        if (text.Length == 0 || text.AsSpan().IndexOfAny("%[]/ ") >= 0 || !text.Contains(':'))
        {
            return false;
        }

        if (!IPAddress.TryParse(text, out IPAddress? parsed) || parsed.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return false;
        }

        address = parsed;
        return true;
    }

    /// <summary>
    /// strtol(text, &amp;end, 10) followed by the slirp4netns check <c>errno == 0 &amp;&amp; *end == '\0'</c>.
    /// An empty string converts to 0 successfully, as in C.
    /// </summary>
    public static bool TryStrtol(string text, out long value)
    {
        value = 0;
        int i = 0;
        while (i < text.Length && IsSpace(text[i]))
        {
            i++;
        }

        bool negative = false;
        if (i < text.Length && (text[i] == '+' || text[i] == '-'))
        {
            negative = text[i] == '-';
            i++;
        }

        int digitsStart = i;
        UInt128 magnitude = 0;
        bool overflow = false;
        while (i < text.Length && text[i] is >= '0' and <= '9')
        {
            if (!overflow)
            {
                // Any magnitude above 2^63 is out of range for a long whatever the sign.
                magnitude = (magnitude * 10) + (uint)(text[i] - '0');
                overflow = magnitude > (UInt128)long.MaxValue + 1;
            }

            i++;
        }

        if (i == digitsStart)
        {
            // No conversion: end points at the start of the string.
            return text.Length == 0;
        }

        if (overflow || (!negative && magnitude > long.MaxValue))
        {
            return false;
        }

        value = negative ? unchecked(-(long)(ulong)magnitude) : (long)magnitude;
        return i == text.Length;
    }

    /// <summary>
    /// sscanf(text + start, "%x", &amp;unsigned) as glibc does it: leading blanks, optional sign,
    /// optional 0x, hex digits (at least one, or the 0x prefix alone which reads as 0); the result
    /// is the unsigned long value truncated to 32 bits. False when nothing converts.
    /// </summary>
    public static bool TryScanHex(string text, int start, out int value)
    {
        value = 0;
        int i = start;
        while (i < text.Length && IsSpace(text[i]))
        {
            i++;
        }

        bool negative = false;
        if (i < text.Length && (text[i] == '+' || text[i] == '-'))
        {
            negative = text[i] == '-';
            i++;
        }

        bool prefix = false;
        if (i + 1 < text.Length && text[i] == '0' && (text[i + 1] == 'x' || text[i + 1] == 'X'))
        {
            prefix = true;
            i += 2;
        }

        ulong magnitude = 0;
        bool overflow = false;
        int digits = 0;
        while (i < text.Length && Uri.IsHexDigit(text[i]))
        {
            ulong digit = (ulong)Convert.ToInt32(text[i].ToString(), 16);
            if (magnitude > (ulong.MaxValue - digit) / 16)
            {
                overflow = true;
            }
            else
            {
                magnitude = (magnitude * 16) + digit;
            }

            digits++;
            i++;
        }

        if (digits == 0 && !prefix)
        {
            return false;
        }

        ulong result = overflow ? ulong.MaxValue : (negative ? unchecked(0 - magnitude) : magnitude);
        value = unchecked((int)(uint)result);
        return true;
    }
}
