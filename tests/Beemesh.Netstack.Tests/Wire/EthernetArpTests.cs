using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Wire;

public class EthernetArpTests
{
    // Who has 10.0.2.2? Tell 10.0.2.100 — broadcast from 52:55:0a:00:02:64, padded to the 60-byte minimum.
    private static byte[] ArpRequestFrame => Hex.Bytes("""
        ffff ffff ffff 5255 0a00 0264 0806
        0001 0800 0604 0001 5255 0a00 0264 0a00 0264
        0000 0000 0000 0a00 0202
        0000 0000 0000 0000 0000 0000 0000 0000 0000
        """);

    [Fact]
    public void ParsesEthernetHeader()
    {
        byte[] bytes = ArpRequestFrame;
        Assert.True(EthernetFrame.TryCreate(bytes, out EthernetFrame frame));
        Assert.True(frame.Destination.IsBroadcast);
        Assert.Equal(MacAddress.Parse("52:55:0a:00:02:64"), frame.Source);
        Assert.Equal(EtherType.Arp, frame.EtherType);
        Assert.Equal(bytes.Length - 14, frame.Payload.Length);
        Assert.True(EthernetRepr.TryParse(frame, out EthernetRepr repr));

        byte[] emitted = new byte[14];
        repr.Emit(emitted);
        Assert.Equal(bytes[..14], emitted);
    }

    [Fact]
    public void RejectsShortFrame() => Assert.False(EthernetFrame.TryCreate(new byte[13], out _));

    [Fact]
    public void SettersBuildAFrameInPlace()
    {
        byte[] bytes = new byte[20];
        Assert.True(EthernetFrame.TryCreate(bytes, out EthernetFrame frame));
        frame.Destination = MacAddress.Broadcast;
        frame.Source = MacAddress.Parse("52:55:0a:00:02:64");
        frame.EtherType = EtherType.Arp;
        Assert.Equal(ArpRequestFrame[..14], bytes[..14]);
    }

    [Fact]
    public void ParsesAndEmitsArpRequest()
    {
        byte[] bytes = ArpRequestFrame;
        Assert.True(ArpPacket.TryCreate(bytes.AsSpan(14), out ArpPacket packet));
        Assert.True(ArpRepr.TryParse(packet, out ArpRepr repr));
        Assert.Equal(
            new ArpRepr(ArpOperation.Request, MacAddress.Parse("52:55:0a:00:02:64"), Ipv4Address.Parse("10.0.2.100"), MacAddress.Zero, Ipv4Address.Parse("10.0.2.2")),
            repr);

        byte[] emitted = new byte[ArpPacket.Length];
        repr.Emit(emitted);
        Assert.Equal(bytes[14..42], emitted);
    }

    [Fact]
    public void ArpReprRejectsOtherHardwareOrOpcode()
    {
        byte[] bytes = ArpRequestFrame[14..];
        bytes[1] = 6; // IEEE 802 hardware type
        Assert.True(ArpPacket.TryCreate(bytes, out ArpPacket packet));
        Assert.False(ArpRepr.TryParse(packet, out _));

        bytes = ArpRequestFrame[14..];
        bytes[7] = 3; // RARP request
        Assert.True(ArpPacket.TryCreate(bytes, out packet));
        Assert.False(ArpRepr.TryParse(packet, out _));
        Assert.False(ArpPacket.TryCreate(new byte[27], out _));
    }
}
