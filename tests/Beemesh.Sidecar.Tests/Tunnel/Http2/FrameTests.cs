using System.Buffers;
using Beemesh.Sidecar.Tunnel.Http2;

namespace Beemesh.Sidecar.Tests.Tunnel.Http2;

/// <summary>Frame encoding and parsing (RFC 9113 sections 4 and 6), golden bytes both ways.</summary>
public sealed class FrameTests
{
    [Fact]
    public void Writes_golden_frames()
    {
        var w = new ArrayBufferWriter<byte>();
        FrameWriter.Settings(w, [new Setting(SettingId.InitialWindowSize, 0x10000), new Setting(SettingId.MaxConcurrentStreams, 100)]);
        FrameWriter.SettingsAck(w);
        FrameWriter.Data(w, 3, "hi"u8, endStream: true);
        FrameWriter.WindowUpdate(w, 0, 0x8000);
        FrameWriter.RstStream(w, 5, Http2ErrorCode.Cancel);
        FrameWriter.Ping(w, 0x0102030405060708, ack: true);
        FrameWriter.GoAway(w, 7, Http2ErrorCode.ProtocolError);
        Assert.Equal(
            HpackTests.Hex(
                "00000c 04 00 00000000 0004 00010000 0003 00000064"
                + "000000 04 01 00000000"
                + "000002 00 01 00000003 6869"
                + "000004 08 00 00000000 00008000"
                + "000004 03 00 00000005 00000008"
                + "000008 06 01 00000000 0102030405060708"
                + "000008 07 00 00000000 00000007 00000001"),
            w.WrittenSpan.ToArray());
    }

    [Fact]
    public void Splits_a_header_block_into_headers_and_continuations()
    {
        var w = new ArrayBufferWriter<byte>();
        FrameWriter.Headers(w, 1, "abcdefghij"u8, endStream: false, maxFrameSize: 4);
        Assert.Equal(
            HpackTests.Hex("000004 01 00 00000001 61626364" + "000004 09 00 00000001 65666768" + "000002 09 04 00000001 696a"),
            w.WrittenSpan.ToArray());
    }

    [Fact]
    public void Reads_frames_one_at_a_time_and_waits_for_whole_ones()
    {
        byte[] input = HpackTests.Hex("000002 00 01 00000003 6869" + "000008 06 00 00000000 0102030405060708");
        Assert.False(FrameReader.TryReadFrame(input.AsSpan(0, 8), 16384, out _, out _));
        Assert.False(FrameReader.TryReadFrame(input.AsSpan(0, 10), 16384, out _, out _));
        Assert.True(FrameReader.TryReadFrame(input, 16384, out FrameHeader data, out int consumed));
        Assert.Equal(new FrameHeader(2, FrameType.Data, FrameFlags.EndStream, 3), data);
        Assert.Equal("hi"u8.ToArray(), FrameReader.Data(data, input.AsSpan(9, 2)).ToArray());
        Assert.True(FrameReader.TryReadFrame(input.AsSpan(consumed), 16384, out FrameHeader ping, out int second));
        Assert.Equal(0x0102030405060708UL, FrameReader.Ping(ping, input.AsSpan(consumed + 9, 8)));
        Assert.Equal(input.Length, consumed + second);
    }

    [Fact]
    public void Drops_the_reserved_bit_of_the_stream_id()
    {
        Assert.Equal(1, FrameHeader.Read(HpackTests.Hex("000000 00 00 80000001")).StreamId);
    }

    [Fact]
    public void Strips_padding_and_priority()
    {
        // PADDED DATA: pad length 2, "ok", 2 bytes of padding.
        var data = new FrameHeader(5, FrameType.Data, FrameFlags.Padded, 1);
        Assert.Equal("ok"u8.ToArray(), FrameReader.Data(data, HpackTests.Hex("02 6f6b 0000")).ToArray());
        // PADDED|PRIORITY HEADERS: pad 1, dependency + weight, block 0x82, 1 byte of padding.
        var headers = new FrameHeader(8, FrameType.Headers, FrameFlags.Padded | FrameFlags.Priority | FrameFlags.EndHeaders, 1);
        Assert.Equal(HpackTests.Hex("82"), FrameReader.HeaderBlock(headers, HpackTests.Hex("01 00000000 10 82 00")).ToArray());
    }

    [Fact]
    public void Parses_settings_windows_resets_and_goaway()
    {
        var settings = new FrameHeader(6, FrameType.Settings, FrameFlags.None, 0);
        Assert.Equal([new Setting(SettingId.MaxFrameSize, 32768)], FrameReader.Settings(settings, HpackTests.Hex("0005 00008000")));
        Assert.Equal(0x1234, FrameReader.WindowUpdate(new FrameHeader(4, FrameType.WindowUpdate, 0, 1), HpackTests.Hex("80001234")));
        Assert.Equal(Http2ErrorCode.RefusedStream, FrameReader.RstStream(new FrameHeader(4, FrameType.RstStream, 0, 1), HpackTests.Hex("00000007")));
        Assert.Equal((9, Http2ErrorCode.NoError), FrameReader.GoAway(new FrameHeader(10, FrameType.GoAway, 0, 0), HpackTests.Hex("00000009 00000000 6869")));
    }

    public static TheoryData<string, Http2ErrorCode> ConnectionErrors => new()
    {
        { "004001 00 00 00000001", Http2ErrorCode.FrameSizeError }, // over the maximum frame size (header alone)
        { "000005 04 00 00000000 0000000000", Http2ErrorCode.FrameSizeError }, // SETTINGS not a multiple of 6
        { "000001 04 01 00000000 00", Http2ErrorCode.FrameSizeError }, // SETTINGS ACK with a payload
        { "000006 04 00 00000001 000100000000", Http2ErrorCode.ProtocolError }, // SETTINGS on a stream
        { "000006 04 00 00000000 000200000002", Http2ErrorCode.ProtocolError }, // ENABLE_PUSH 2
        { "000006 04 00 00000000 000480000000", Http2ErrorCode.FlowControlError }, // INITIAL_WINDOW_SIZE 2^31
        { "000006 04 00 00000000 000500003fff", Http2ErrorCode.ProtocolError }, // MAX_FRAME_SIZE 16383
        { "000007 06 00 00000000 01020304050607", Http2ErrorCode.FrameSizeError }, // short PING
        { "000008 06 00 00000001 0102030405060708", Http2ErrorCode.ProtocolError }, // PING on a stream
        { "000004 08 00 00000000 00000000", Http2ErrorCode.ProtocolError }, // connection WINDOW_UPDATE of 0
        { "000003 08 00 00000000 000001", Http2ErrorCode.FrameSizeError }, // short WINDOW_UPDATE
        { "000003 03 00 00000001 000008", Http2ErrorCode.FrameSizeError }, // short RST_STREAM
        { "000004 03 00 00000000 00000008", Http2ErrorCode.ProtocolError }, // RST_STREAM on stream 0
        { "000002 00 00 00000000 6869", Http2ErrorCode.ProtocolError }, // DATA on stream 0
        { "000002 00 08 00000001 0500", Http2ErrorCode.ProtocolError }, // padding longer than the payload
        { "000000 00 08 00000001", Http2ErrorCode.FrameSizeError }, // PADDED without the pad length
        { "000004 07 00 00000000 00000001", Http2ErrorCode.FrameSizeError }, // short GOAWAY
        { "000002 01 24 00000001 0000", Http2ErrorCode.FrameSizeError }, // HEADERS too short for PRIORITY
    };

    [Theory]
    [MemberData(nameof(ConnectionErrors))]
    public void Malformed_frames_are_connection_errors_with_the_rfcs_code(string hex, Http2ErrorCode code)
    {
        var e = Assert.Throws<Http2ConnectionException>(() => Parse(HpackTests.Hex(hex)));
        Assert.Equal(code, e.ErrorCode);
    }

    [Fact]
    public void A_stream_window_update_of_zero_is_a_stream_error()
    {
        var e = Assert.Throws<Http2StreamException>(() => Parse(HpackTests.Hex("000004 08 00 00000003 00000000")));
        Assert.Equal((3, Http2ErrorCode.ProtocolError), (e.StreamId, e.ErrorCode));
    }

    /// <summary>Reads one frame and parses its payload by type, as the connection does.</summary>
    internal static void Parse(ReadOnlySpan<byte> input)
    {
        Assert.True(FrameReader.TryReadFrame(input, 16384, out FrameHeader header, out int consumed));
        FrameReader.Check(header, input[9..consumed]);
    }
}
