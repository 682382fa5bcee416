using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Wire;

public class TcpPacketTests
{
    private static readonly Ipv4Address Localhost = Ipv4Address.Loopback;

    [Fact]
    public void ParsesCapturedSyn()
    {
        byte[] frame = Captures.TcpSyn;
        Assert.True(TcpPacket.TryCreate(frame.AsSpan(34), out TcpPacket packet));
        Assert.Equal(51078, packet.SourcePort);
        Assert.Equal(45678, packet.DestinationPort);
        Assert.Equal(2887017394u, packet.SequenceNumber);
        Assert.Equal(0u, packet.AcknowledgmentNumber);
        Assert.Equal(40, packet.HeaderLength);
        Assert.Equal(TcpFlags.Syn, packet.Flags);
        Assert.Equal(65495, packet.Window);
        Assert.Equal(0x51ef, packet.Checksum);
        Assert.True(packet.VerifyChecksumV4(Localhost, Localhost));
        Assert.Equal(0, packet.Payload.Length);

        Assert.True(packet.TryReadOptions(out TcpOptions options));
        Assert.Equal(65495, options.Mss);
        Assert.True(options.SackPermitted);
        Assert.True(options.HasTimestamp);
        Assert.Equal(342384619u, options.TsVal);
        Assert.Equal(0u, options.TsEcr);
        Assert.True(options.HasWindowScale);
        Assert.Equal(10, options.WindowScale);
        Assert.Equal(0, options.SackCount);
    }

    [Fact]
    public void ReprEmitsTheCapturedSynWithLinuxOptionOrder()
    {
        byte[] frame = Captures.TcpSyn;
        Assert.True(TcpPacket.TryCreate(frame.AsSpan(34), out TcpPacket packet));
        Assert.True(TcpRepr.TryParse(packet, out TcpRepr repr));
        Assert.Equal(40, repr.HeaderLength);

        byte[] emitted = new byte[repr.BufferLength];
        repr.Emit(emitted);
        Assert.True(TcpPacket.TryCreate(emitted, out TcpPacket built));
        built.FillChecksumV4(Localhost, Localhost);
        Assert.Equal(frame[34..], emitted);
    }

    [Fact]
    public void ParsesAndRebuildsCapturedDataSegment()
    {
        byte[] frame = Captures.TcpData;
        Assert.True(Ipv4Packet.TryCreate(frame.AsSpan(14), out Ipv4Packet ip));
        Assert.True(TcpPacket.TryCreate(ip.Payload, out TcpPacket packet));
        Assert.Equal(TcpFlags.Psh | TcpFlags.Ack, packet.Flags);
        Assert.Equal("hello"u8.ToArray(), packet.Payload.ToArray());
        Assert.True(packet.VerifyChecksumV4(ip.Source, ip.Destination));
        Assert.True(TcpRepr.TryParse(packet, out TcpRepr repr));
        Assert.Equal(5, repr.PayloadLength);
        Assert.False(repr.Options.SackPermitted);
        Assert.Equal(172976642u, repr.Options.TsEcr);

        byte[] emitted = new byte[repr.BufferLength];
        repr.Emit(emitted);
        "hello"u8.CopyTo(emitted.AsSpan(repr.HeaderLength));
        Assert.True(TcpPacket.TryCreate(emitted, out TcpPacket built));
        built.FillChecksumV4(ip.Source, ip.Destination);
        Assert.Equal(frame[34..], emitted);

        emitted[^1] ^= 1;
        Assert.False(built.VerifyChecksumV4(ip.Source, ip.Destination));
    }

    [Fact]
    public void ChecksumOverIpv6()
    {
        byte[] segment = new byte[24];
        TcpRepr repr = new(80, 40000, 1, 2, TcpFlags.Ack, 1000, default, 4);
        repr.Emit(segment);
        Assert.True(TcpPacket.TryCreate(segment, out TcpPacket packet));
        Ipv6Address source = Ipv6Address.Parse("fd00::2");
        Ipv6Address destination = Ipv6Address.Parse("fd00::100");
        packet.FillChecksumV6(source, destination);
        Assert.True(packet.VerifyChecksumV6(source, destination));
        Assert.False(packet.VerifyChecksumV6(destination, Ipv6Address.Loopback));

        byte[] pseudo = new byte[40 + 24];
        source.CopyTo(pseudo);
        destination.CopyTo(pseudo.AsSpan(16));
        pseudo[35] = 24;
        pseudo[39] = 6;
        segment.CopyTo(pseudo, 40);
        Assert.Equal(0, InternetChecksum.Compute(pseudo));
    }

    [Fact]
    public void WritesOptionsLikeLinux()
    {
        TcpOptions syn = new() { Mss = 1460, SackPermitted = true, HasWindowScale = true, WindowScale = 7 };
        byte[] buffer = new byte[40];
        int length = TcpPacket.WriteOptions(syn, buffer);
        Assert.Equal(12, length);
        Assert.Equal(length, TcpPacket.OptionsLength(syn));
        Assert.Equal(Hex.Bytes("020405b4 01010402 01030307"), buffer[..length]);

        TcpOptions ack = new() { HasTimestamp = true, TsVal = 1, TsEcr = 2 };
        ack.TryAddSack(new SackBlock(100, 200));
        ack.TryAddSack(new SackBlock(300, 400));
        length = TcpPacket.WriteOptions(ack, buffer);
        Assert.Equal(32, length);
        Assert.Equal(
            Hex.Bytes("0101080a 00000001 00000002 01010512 00000064 000000c8 0000012c 00000190"),
            buffer[..length]);
        Assert.True(TcpPacket.TryReadOptions(buffer.AsSpan(0, length), out TcpOptions read));
        Assert.Equal(ack, read);
    }

    [Fact]
    public void SackBlocksThatDoNotFitAreDropped()
    {
        TcpOptions options = new() { HasTimestamp = true };
        for (uint i = 0; i < 4; i++)
        {
            Assert.True(options.TryAddSack(new SackBlock(i * 10, (i * 10) + 5)));
        }

        Assert.False(options.TryAddSack(new SackBlock(1, 2)));
        Assert.Equal(12 + 4 + 24, TcpPacket.OptionsLength(options));
        byte[] buffer = new byte[40];
        Assert.Equal(40, TcpPacket.WriteOptions(options, buffer));
        Assert.True(TcpPacket.TryReadOptions(buffer, out TcpOptions read));
        Assert.Equal(3, read.SackCount);

        options.HasTimestamp = false;
        Assert.Equal(36, TcpPacket.WriteOptions(options, buffer));
        Assert.True(TcpPacket.TryReadOptions(buffer.AsSpan(0, 36), out read));
        Assert.Equal(4, read.SackCount);
        Assert.Equal(new SackBlock(30, 35), read.Sack[3]);
    }

    [Theory]
    [InlineData("0204")] // MSS with no room
    [InlineData("020305b4")] // MSS length 3
    [InlineData("0201")] // length below 2
    [InlineData("03020a")] // window scale length 2
    [InlineData("05090000000100000002")] // SACK length not 2 + 8n
    [InlineData("0508000000010000")] // SACK runs past the options
    [InlineData("080600000000")] // timestamp length 6
    [InlineData("01")] // fine: NOP only
    public void RejectsMalformedOptionLengths(string hex)
    {
        bool ok = TcpPacket.TryReadOptions(Hex.Bytes(hex), out _);
        Assert.Equal(hex == "01", ok);
    }

    [Fact]
    public void SkipsUnknownOptionsAndStopsAtEndOfList()
    {
        // Unknown kind 30 (MPTCP) of length 4, MSS, EOL, then garbage that must be ignored.
        Assert.True(TcpPacket.TryReadOptions(Hex.Bytes("1e040000 020405b4 00ff"), out TcpOptions options));
        Assert.Equal(1460, options.Mss);
    }

    [Theory]
    [InlineData(0x40)] // data offset 4
    [InlineData(0xF0)] // data offset 15 > buffer
    public void RejectsBadDataOffset(byte dataOffset)
    {
        byte[] bytes = Captures.TcpSyn[34..];
        bytes[12] = dataOffset;
        Assert.False(TcpPacket.TryCreate(bytes, out _));
        Assert.False(TcpPacket.TryCreate(new byte[19], out _));
    }

    [Fact]
    public void ReprRejectsMalformedOptions()
    {
        byte[] bytes = Captures.TcpSyn[34..];
        bytes[21] = 3; // MSS option length 3
        Assert.True(TcpPacket.TryCreate(bytes, out TcpPacket packet));
        Assert.False(TcpRepr.TryParse(packet, out _));
    }

    [Fact]
    public void SettersBuildTheCapturedSegmentInPlace()
    {
        byte[] bytes = new byte[Captures.TcpData.Length - 34];
        bytes[12] = 0x80; // data offset 8 so the view can be created over zeroes
        Assert.True(TcpPacket.TryCreate(bytes, out TcpPacket packet));
        packet.SourcePort = 51078;
        packet.DestinationPort = 45678;
        packet.SequenceNumber = 2887017395;
        packet.AcknowledgmentNumber = 4021007273;
        packet.Flags = TcpFlags.Psh | TcpFlags.Ack;
        packet.Window = 64;
        TcpOptions options = new() { HasTimestamp = true, TsVal = 342384619, TsEcr = 172976642 };
        Assert.Equal(12, TcpPacket.WriteOptions(options, packet.Options));
        "hello"u8.CopyTo(packet.Payload);
        packet.FillChecksumV4(Localhost, Localhost);
        Assert.Equal(Captures.TcpData[34..], bytes);
    }

    [Fact]
    public void HeaderLengthSetterCannotPushAccessorsOutOfRange()
    {
        byte[] bytes = new byte[24];
        bytes[12] = 0x50;
        Assert.True(TcpPacket.TryCreate(bytes, out TcpPacket packet));
        packet.HeaderLength = 60;
        Assert.Equal(4, packet.Options.Length);
        Assert.Equal(0, packet.Payload.Length);
    }
}
