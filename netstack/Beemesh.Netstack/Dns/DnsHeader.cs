using System.Buffers.Binary;

namespace Beemesh.Netstack.Dns;

/// <summary>
/// A read-only view of the 12-byte DNS message header (RFC 1035 §4.1.1). <see cref="TryCreate"/>
/// checks the length once; after that no accessor can read out of range. Only the header is
/// read: the forwarder passes the rest of a message through untouched.
/// </summary>
public readonly ref struct DnsHeader
{
    /// <summary>Length of the header.</summary>
    public const int Length = 12;

    private const ushort QrMask = 0x8000;
    private const ushort AaMask = 0x0400;
    private const ushort TcMask = 0x0200;
    private const ushort RdMask = 0x0100;
    private const ushort RaMask = 0x0080;

    private readonly ReadOnlySpan<byte> _buffer;

    private DnsHeader(ReadOnlySpan<byte> buffer) => _buffer = buffer;

    /// <summary>Wraps <paramref name="message"/> if it holds a whole header.</summary>
    /// <param name="message">A DNS message (UDP payload, or a TCP message without its length prefix).</param>
    /// <param name="header">The view when the method returns true.</param>
    /// <returns>False when the message is shorter than 12 bytes.</returns>
    public static bool TryCreate(ReadOnlySpan<byte> message, out DnsHeader header)
    {
        if (message.Length < Length)
        {
            header = default;
            return false;
        }

        header = new DnsHeader(message);
        return true;
    }

    /// <summary>Checks what the forwarder accepts from the guest: a whole header with QR = 0.</summary>
    /// <param name="message">The guest's UDP payload to 10.0.2.3:53.</param>
    /// <returns>Whether to forward it, or why not.</returns>
    public static DnsQueryCheck CheckQuery(ReadOnlySpan<byte> message)
    {
        if (!TryCreate(message, out DnsHeader header))
        {
            return DnsQueryCheck.TooShort;
        }

        return header.IsResponse ? DnsQueryCheck.IsResponse : DnsQueryCheck.Valid;
    }

    /// <summary>ID: matches a response to its query.</summary>
    public ushort Id => BinaryPrimitives.ReadUInt16BigEndian(_buffer);

    /// <summary>The whole flags word (QR, Opcode, AA, TC, RD, RA, Z, AD, CD, RCODE).</summary>
    public ushort Flags => BinaryPrimitives.ReadUInt16BigEndian(_buffer[2..]);

    /// <summary>QR: true for a response, false for a query.</summary>
    public bool IsResponse => (Flags & QrMask) != 0;

    /// <summary>Opcode (4 bits): 0 QUERY, 1 IQUERY (obsolete), 2 STATUS, 4 NOTIFY, 5 UPDATE.</summary>
    public int Opcode => (Flags >> 11) & 0xF;

    /// <summary>AA: authoritative answer.</summary>
    public bool IsAuthoritative => (Flags & AaMask) != 0;

    /// <summary>TC: the message was truncated (the client should retry over TCP).</summary>
    public bool IsTruncated => (Flags & TcMask) != 0;

    /// <summary>RD: recursion desired.</summary>
    public bool RecursionDesired => (Flags & RdMask) != 0;

    /// <summary>RA: recursion available.</summary>
    public bool RecursionAvailable => (Flags & RaMask) != 0;

    /// <summary>RCODE (low 4 bits): 0 NOERROR, 1 FORMERR, 2 SERVFAIL, 3 NXDOMAIN, 4 NOTIMP, 5 REFUSED.</summary>
    public int ResponseCode => Flags & 0xF;

    /// <summary>QDCOUNT: entries in the question section.</summary>
    public ushort QuestionCount => BinaryPrimitives.ReadUInt16BigEndian(_buffer[4..]);

    /// <summary>ANCOUNT: resource records in the answer section.</summary>
    public ushort AnswerCount => BinaryPrimitives.ReadUInt16BigEndian(_buffer[6..]);

    /// <summary>NSCOUNT: resource records in the authority section.</summary>
    public ushort AuthorityCount => BinaryPrimitives.ReadUInt16BigEndian(_buffer[8..]);

    /// <summary>ARCOUNT: resource records in the additional section.</summary>
    public ushort AdditionalCount => BinaryPrimitives.ReadUInt16BigEndian(_buffer[10..]);
}
