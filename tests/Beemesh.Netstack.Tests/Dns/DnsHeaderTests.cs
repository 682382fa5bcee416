using Beemesh.Netstack.Dns;
using FsCheck.Xunit;

namespace Beemesh.Netstack.Tests.Dns;

public class DnsHeaderTests
{
    // dig-style query for example.com A: id 0xbeef, RD, QDCOUNT 1, ARCOUNT 1 (EDNS).
    private static readonly byte[] Query = Convert.FromHexString(
        "beef01200001000000000001076578616d706c6503636f6d0000010001");

    // A response: id 0x1234, QR AA RD RA, RCODE 3 (NXDOMAIN), counts 1/0/1/0.
    private static readonly byte[] NxDomain = Convert.FromHexString("123485830001000000010000");

    [Fact]
    public void Reads_every_field_of_a_query()
    {
        Assert.True(DnsHeader.TryCreate(Query, out DnsHeader h));

        Assert.Equal(0xbeef, h.Id);
        Assert.Equal(0x0120, h.Flags);
        Assert.False(h.IsResponse);
        Assert.Equal(0, h.Opcode);
        Assert.True(h.RecursionDesired);
        Assert.False(h.RecursionAvailable);
        Assert.False(h.IsTruncated);
        Assert.Equal(0, h.ResponseCode);
        Assert.Equal(1, h.QuestionCount);
        Assert.Equal(0, h.AnswerCount);
        Assert.Equal(0, h.AuthorityCount);
        Assert.Equal(1, h.AdditionalCount);
    }

    [Fact]
    public void Reads_response_flags()
    {
        Assert.True(DnsHeader.TryCreate(NxDomain, out DnsHeader h));

        Assert.True(h.IsResponse);
        Assert.True(h.IsAuthoritative);
        Assert.True(h.RecursionDesired);
        Assert.True(h.RecursionAvailable);
        Assert.Equal(3, h.ResponseCode);
        Assert.Equal(1, h.AuthorityCount);
    }

    [Fact]
    public void Opcode_is_the_four_bits_after_qr()
    {
        byte[] notify = (byte[])Query.Clone();
        notify[2] = 0x20; // opcode 4 (NOTIFY)

        DnsHeader.TryCreate(notify, out DnsHeader h);

        Assert.Equal(4, h.Opcode);
        Assert.False(h.IsResponse);
    }

    [Fact]
    public void Forwarder_check_drops_short_messages_and_responses()
    {
        Assert.Equal(DnsQueryCheck.Valid, DnsHeader.CheckQuery(Query));
        Assert.Equal(DnsQueryCheck.Valid, DnsHeader.CheckQuery(Query.AsSpan(0, 12)));
        Assert.Equal(DnsQueryCheck.TooShort, DnsHeader.CheckQuery(Query.AsSpan(0, 11)));
        Assert.Equal(DnsQueryCheck.TooShort, DnsHeader.CheckQuery([]));
        Assert.Equal(DnsQueryCheck.IsResponse, DnsHeader.CheckQuery(NxDomain));
        Assert.False(DnsHeader.TryCreate(new byte[11], out _));
    }

    [Property(MaxTest = 300)]
    public void Any_bytes_never_throw(byte[] bytes)
    {
        bytes ??= [];
        DnsQueryCheck check = DnsHeader.CheckQuery(bytes);
        if (DnsHeader.TryCreate(bytes, out DnsHeader h))
        {
            Assert.InRange(h.Opcode, 0, 15);
            Assert.InRange(h.ResponseCode, 0, 15);
            Assert.Equal(h.IsResponse ? DnsQueryCheck.IsResponse : DnsQueryCheck.Valid, check);
            _ = h.Id + h.QuestionCount + h.AnswerCount + h.AuthorityCount + h.AdditionalCount;
        }
        else
        {
            Assert.Equal(DnsQueryCheck.TooShort, check);
        }
    }
}
