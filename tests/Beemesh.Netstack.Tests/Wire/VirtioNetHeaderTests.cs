using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Wire;

public class VirtioNetHeaderTests
{
    // A TSO super-segment as the kernel hands it over: NEEDS_CSUM, GSO_TCPV4, hdr_len 66, gso_size 1448,
    // csum_start 34 (Ethernet + IPv4), csum_offset 16 (TCP checksum field); little-endian fields.
    private static byte[] TsoHeader => Hex.Bytes("0101 4200 a805 2200 1000");

    [Fact]
    public void ParsesAndEmitsLittleEndianFields()
    {
        byte[] bytes = [.. TsoHeader, .. new byte[100]];
        Assert.True(VirtioNetHeader.TryCreate(bytes, out VirtioNetHeader header));
        Assert.Equal(VirtioNetHeaderFlags.NeedsChecksum, header.Flags);
        Assert.Equal(VirtioNetGsoType.TcpV4, header.GsoType);
        Assert.Equal(66, header.HeaderLength);
        Assert.Equal(1448, header.GsoSize);
        Assert.Equal(34, header.ChecksumStart);
        Assert.Equal(16, header.ChecksumOffset);
        Assert.Equal(100, header.Payload.Length);

        Assert.True(VirtioNetHeaderRepr.TryParse(header, out VirtioNetHeaderRepr repr));
        Assert.True(repr.IsGso);
        byte[] emitted = new byte[VirtioNetHeader.Length];
        repr.Emit(emitted);
        Assert.Equal(TsoHeader, emitted);
    }

    [Fact]
    public void DefaultReprIsAPlainFrame()
    {
        byte[] emitted = new byte[10];
        emitted.AsSpan().Fill(0xAA);
        default(VirtioNetHeaderRepr).Emit(emitted);
        Assert.Equal(new byte[10], emitted);
        Assert.False(default(VirtioNetHeaderRepr).IsGso);
    }

    [Theory]
    [InlineData("0401 4200 a805 2200 1000")] // unknown flag bit
    [InlineData("0102 4200 a805 2200 1000")] // unknown GSO type 2
    [InlineData("0101 4200 0000 2200 1000")] // GSO without gso_size
    [InlineData("0100 4200 0000 ff00 1000")] // checksum outside the frame
    public void RejectsInconsistentHeaders(string hex)
    {
        byte[] bytes = [.. Hex.Bytes(hex), .. new byte[100]];
        Assert.True(VirtioNetHeader.TryCreate(bytes, out VirtioNetHeader header));
        Assert.False(VirtioNetHeaderRepr.TryParse(header, out _));
    }

    [Fact]
    public void EcnBitIsAcceptedWithAType()
    {
        byte[] bytes = [.. Hex.Bytes("0184 4200 a805 3600 1000"), .. new byte[100]];
        Assert.True(VirtioNetHeader.TryCreate(bytes, out VirtioNetHeader header));
        Assert.True(VirtioNetHeaderRepr.TryParse(header, out VirtioNetHeaderRepr repr));
        Assert.Equal(VirtioNetGsoType.TcpV6 | VirtioNetGsoType.Ecn, repr.GsoType);
        Assert.False(VirtioNetHeader.TryCreate(new byte[9], out _));
    }
}
