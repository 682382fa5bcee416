using System.Buffers.Binary;
using System.Text;

namespace Beemesh.Agent.Tunnel;

/// <summary>What <see cref="ClientHelloSni.TryRead"/> made of the bytes seen so far.</summary>
public enum SniReadStatus
{
    /// <summary>The ClientHello is not complete yet: read more bytes and call again.</summary>
    NeedMore,

    /// <summary>A complete ClientHello with a valid host name in its server_name extension.</summary>
    Found,

    /// <summary>A complete ClientHello without a server_name extension.</summary>
    Missing,

    /// <summary>Not a TLS ClientHello, or one that breaks its own length fields or the size limit.</summary>
    Malformed,
}

/// <summary>
/// Reads the server name (SNI, RFC 6066) from the first bytes a TLS client sends, without
/// terminating TLS (sans-IO: the caller feeds the bytes it has read). The ClientHello may span
/// several handshake records; it must fit in <see cref="MaxHelloBytes"/>.
/// </summary>
public static class ClientHelloSni
{
    /// <summary>Most bytes of records read before a ClientHello is given up as malformed (16 KiB plus record headers).</summary>
    public const int MaxHelloBytes = 16 * 1024 + 5 * 4;

    private const byte HandshakeRecord = 22;
    private const byte ClientHelloType = 1;
    private const ushort ServerNameExtension = 0;

    /// <summary>
    /// Tries to read the SNI host name from <paramref name="data"/>, the bytes the client sent so
    /// far. On <see cref="SniReadStatus.Found"/>, <paramref name="serverName"/> is the host name in
    /// lower case.
    /// </summary>
    public static SniReadStatus TryRead(ReadOnlySpan<byte> data, out string? serverName)
    {
        serverName = null;
        // Reassemble the handshake message from consecutive handshake records.
        Span<byte> hello = new byte[Math.Min(data.Length, MaxHelloBytes)];
        int helloLength = 0;
        int offset = 0;
        int needed = -1;
        while (true)
        {
            if (data.Length - offset < 5)
            {
                return data.Length >= MaxHelloBytes ? SniReadStatus.Malformed : SniReadStatus.NeedMore;
            }

            ReadOnlySpan<byte> header = data.Slice(offset, 5);
            if (header[0] != HandshakeRecord || header[1] != 3)
            {
                return SniReadStatus.Malformed;
            }

            int recordLength = BinaryPrimitives.ReadUInt16BigEndian(header[3..]);
            if (recordLength == 0 || recordLength > 16 * 1024 || offset + 5 + recordLength > MaxHelloBytes)
            {
                return SniReadStatus.Malformed;
            }

            int available = Math.Min(recordLength, data.Length - offset - 5);
            data.Slice(offset + 5, available).CopyTo(hello[helloLength..]);
            helloLength += available;
            if (needed < 0 && helloLength >= 4)
            {
                if (hello[0] != ClientHelloType)
                {
                    return SniReadStatus.Malformed;
                }

                needed = 4 + ((hello[1] << 16) | (hello[2] << 8) | hello[3]);
                if (needed > MaxHelloBytes)
                {
                    return SniReadStatus.Malformed;
                }
            }

            if (needed >= 0 && helloLength >= needed)
            {
                return Parse(hello[4..needed], out serverName);
            }

            if (available < recordLength)
            {
                return SniReadStatus.NeedMore;
            }

            offset += 5 + recordLength;
        }
    }

    private static SniReadStatus Parse(ReadOnlySpan<byte> body, out string? serverName)
    {
        serverName = null;
        var reader = new Reader(body);
        if (!reader.Skip(2 + 32) // legacy_version, random
            || !reader.SkipVector(1) // legacy_session_id
            || !reader.SkipVector(2) // cipher_suites
            || !reader.SkipVector(1)) // legacy_compression_methods
        {
            return SniReadStatus.Malformed;
        }

        if (reader.Remaining == 0)
        {
            return SniReadStatus.Missing;
        }

        if (!reader.Vector(2, out ReadOnlySpan<byte> extensions) || reader.Remaining != 0)
        {
            return SniReadStatus.Malformed;
        }

        var ext = new Reader(extensions);
        while (ext.Remaining > 0)
        {
            if (!ext.UInt16(out ushort type) || !ext.Vector(2, out ReadOnlySpan<byte> value))
            {
                return SniReadStatus.Malformed;
            }

            if (type != ServerNameExtension)
            {
                continue;
            }

            var list = new Reader(value);
            if (!list.Vector(2, out ReadOnlySpan<byte> names) || list.Remaining != 0)
            {
                return SniReadStatus.Malformed;
            }

            var entries = new Reader(names);
            while (entries.Remaining > 0)
            {
                if (!entries.Byte(out byte nameType) || !entries.Vector(2, out ReadOnlySpan<byte> name))
                {
                    return SniReadStatus.Malformed;
                }

                if (nameType == 0)
                {
                    if (!IsHostName(name))
                    {
                        return SniReadStatus.Malformed;
                    }

                    serverName = Encoding.ASCII.GetString(name).ToLowerInvariant();
                    return SniReadStatus.Found;
                }
            }

            return SniReadStatus.Missing;
        }

        return SniReadStatus.Missing;
    }

    /// <summary>A DNS host name: 1 to 253 bytes of letters, digits, '-' and '.', no empty label.</summary>
    private static bool IsHostName(ReadOnlySpan<byte> name)
    {
        if (name.Length is 0 or > 253 || name[0] == '.' || name[^1] == '.')
        {
            return false;
        }

        byte previous = 0;
        foreach (byte b in name)
        {
            bool ok = b is (byte)'-' or (byte)'.' or >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z';
            if (!ok || (b == '.' && previous == '.'))
            {
                return false;
            }

            previous = b;
        }

        return true;
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _data = data;

        public readonly int Remaining => _data.Length;

        public bool Skip(int count)
        {
            if (_data.Length < count)
            {
                return false;
            }

            _data = _data[count..];
            return true;
        }

        public bool Byte(out byte value)
        {
            value = 0;
            if (_data.Length < 1)
            {
                return false;
            }

            value = _data[0];
            _data = _data[1..];
            return true;
        }

        public bool UInt16(out ushort value)
        {
            value = 0;
            if (_data.Length < 2)
            {
                return false;
            }

            value = BinaryPrimitives.ReadUInt16BigEndian(_data);
            _data = _data[2..];
            return true;
        }

        public bool Vector(int lengthBytes, out ReadOnlySpan<byte> value)
        {
            value = default;
            if (_data.Length < lengthBytes)
            {
                return false;
            }

            int length = lengthBytes == 1 ? _data[0] : BinaryPrimitives.ReadUInt16BigEndian(_data);
            if (_data.Length < lengthBytes + length)
            {
                return false;
            }

            value = _data.Slice(lengthBytes, length);
            _data = _data[(lengthBytes + length)..];
            return true;
        }

        public bool SkipVector(int lengthBytes) => Vector(lengthBytes, out _);
    }
}
