using System.Net;
using Beemesh.Overlay.Codec;
using Beemesh.Overlay.Records;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Beemesh.Overlay.Tests;

public sealed class CodecTests
{
    private static readonly OverlayRecord Sample = new(
        RecordKind.Route, "web.shop", 0x0102, new RecordVersion(new HlcTimestamp(0x10, 2), 0x0102), 0x20, false, new byte[] { 0xAA, 0xBB }, new byte[] { 0x5A });

    [Fact]
    public void PingIsFiveBytes()
    {
        Assert.Equal(Convert.FromHexString("000000010A"), OverlayCodec.Encode(OverlayMessage.Ping));
    }

    [Fact]
    public void HelloGoldenBytes()
    {
        var self = new PeerAddress(0x1122334455667788, new IPEndPoint(IPAddress.Parse("10.0.0.2"), 15008));
        byte[] frame = OverlayCodec.Encode(OverlayMessage.Hello(self, OverlayNode.ProtocolVersion));
        Assert.Equal(Convert.FromHexString("00000012" + "01" + "1122334455667788" + "04" + "0A000002" + "3AA0" + "0001"), frame);
        Assert.Equal(FrameStatus.Complete, OverlayCodec.TryReadHello(frame, out PeerAddress peer, out int consumed, out _));
        Assert.Equal(frame.Length, consumed);
        Assert.Equal(self.Id, peer.Id);
        Assert.Equal(self.EndPoint, peer.EndPoint);
    }

    [Fact]
    public void GossipGoldenBytes()
    {
        byte[] frame = OverlayCodec.Encode(OverlayMessage.Gossip(Sample));
        string expected = "0F" + "00" + "02" + "0008" + Convert.ToHexString("web.shop"u8) + "0000000000000102"
            + "0000000000000010" + "00000002" + "0000000000000102" + "0000000000000020" + "00" + "00000002" + "AABB" + "0001" + "5A";
        Assert.Equal(expected, Convert.ToHexString(frame.AsSpan(4)));
        Assert.Equal(frame.Length - 4, (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(frame));
    }

    [Fact]
    public void HelloMustComeFirstAndSpeakOurVersion()
    {
        Assert.Equal(FrameStatus.Malformed, OverlayCodec.TryReadHello(OverlayCodec.Encode(OverlayMessage.Ping), out _, out _, out OverlayCodecError e1));
        Assert.Equal(OverlayCodecError.HelloExpected, e1);
        Assert.Equal(FrameStatus.Malformed, OverlayCodec.TryReadHello(OverlayCodec.Encode(OverlayMessage.Hello(new PeerAddress(1), 99)), out _, out _, out OverlayCodecError e2));
        Assert.Equal(OverlayCodecError.UnsupportedVersion, e2);
    }

    [Fact]
    public void MalformedFramesGetSpecificErrors()
    {
        Assert.Equal(OverlayCodecError.BadLength, Read("FFFFFFFF0A"));
        Assert.Equal(OverlayCodecError.BadLength, Read("00000000"));
        Assert.Equal(OverlayCodecError.UnknownType, Read("00000001FE"));
        Assert.Equal(OverlayCodecError.TrailingBytes, Read("000000020A00"));
        Assert.Equal(OverlayCodecError.Truncated, Read("0000000202" + "11"));
        Assert.Equal(OverlayCodecError.BadField, Read("0000000A02" + "0000000000000001" + "05"));
        Assert.Equal(OverlayCodecError.FieldTooLarge, Read("0000000310" + "FFFF"));
        // A record of an unknown kind.
        Assert.Equal(OverlayCodecError.BadField, Read("000000040F" + "00" + "09" + "00"));
    }

    [Fact]
    public void PartialFramesAskForMore()
    {
        byte[] frame = OverlayCodec.Encode(OverlayMessage.Gossip(Sample));
        for (int n = 0; n < frame.Length; n++)
        {
            Assert.Equal(FrameStatus.Incomplete, OverlayCodec.TryReadFrame(frame.AsSpan(0, n), out _, out int consumed, out _));
            Assert.Equal(0, consumed);
        }
    }

    [Property(MaxTest = 300)]
    public Property ArbitraryBytesNeverThrow(byte[] bytes)
    {
        FrameStatus status = OverlayCodec.TryReadFrame(bytes, out OverlayMessage? message, out int consumed, out OverlayCodecError error);
        bool consistent = status switch
        {
            FrameStatus.Complete => message is not null && error == OverlayCodecError.None && consumed <= bytes.Length,
            FrameStatus.Malformed => message is null && error != OverlayCodecError.None,
            _ => message is null && consumed == 0,
        };
        return consistent.ToProperty();
    }

    [Property(MaxTest = 300)]
    public Property MessagesRoundTrip(byte type, ulong id, byte ttl, bool flag, NonNegativeInt peers, string key, byte[] payload, long physical, int logical)
    {
        var kinds = Enum.GetValues<OverlayMessageType>();
        OverlayMessageType t = kinds[type % kinds.Length];
        key = new string((key ?? "").Where(c => !char.IsSurrogate(c)).Take(100).ToArray());
        var peer = new PeerAddress(id, id % 2 == 0 ? new IPEndPoint(IPAddress.IPv6Loopback, (int)(id % 65536)) : null);
        var record = new OverlayRecord(RecordKind.Bundle, key, id, new RecordVersion(new HlcTimestamp(physical, logical), id), physical, flag, payload ?? [], [1, 2]);
        var list = Enumerable.Range(0, peers.Get % 10).Select(i => new PeerAddress((ulong)i)).ToArray();
        var message = t == OverlayMessageType.Gossip
            ? OverlayMessage.Gossip(record, flag)
            : new OverlayMessage(t, peer, ttl, flag, list, null, [record.Id, record.Id]);
        byte[] frame = OverlayCodec.Encode(message);
        FrameStatus status = OverlayCodec.TryReadFrame(frame, out OverlayMessage? back, out int consumed, out _);
        return (status == FrameStatus.Complete && consumed == frame.Length && OverlayCodec.Encode(back!).SequenceEqual(frame)).ToProperty();
    }

    private static OverlayCodecError Read(string hex)
    {
        FrameStatus status = OverlayCodec.TryReadFrame(Convert.FromHexString(hex), out _, out _, out OverlayCodecError error);
        Assert.Equal(FrameStatus.Malformed, status);
        return error;
    }
}
