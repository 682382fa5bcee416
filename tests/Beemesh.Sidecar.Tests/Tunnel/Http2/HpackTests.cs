using System.Buffers;
using Beemesh.Sidecar.Tunnel.Http2;

namespace Beemesh.Sidecar.Tests.Tunnel.Http2;

/// <summary>HPACK against the examples of RFC 7541 Appendix C, and its error cases.</summary>
public sealed class HpackTests
{
    private static readonly HeaderField[] RequestOne = [new(":method", "GET"), new(":scheme", "http"), new(":path", "/"), new(":authority", "www.example.com")];
    private static readonly HeaderField[] RequestTwo = [.. RequestOne, new("cache-control", "no-cache")];
    private static readonly HeaderField[] RequestThree =
        [new(":method", "GET"), new(":scheme", "https"), new(":path", "/index.html"), new(":authority", "www.example.com"), new("custom-key", "custom-value")];

    private const string Date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
    private const string Date2 = "Mon, 21 Oct 2013 20:13:22 GMT";
    private const string Cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
    private static readonly HeaderField[] ResponseOne = [new(":status", "302"), new("cache-control", "private"), new("date", Date1), new("location", "https://www.example.com")];
    private static readonly HeaderField[] ResponseTwo = [new(":status", "307"), new("cache-control", "private"), new("date", Date1), new("location", "https://www.example.com")];
    private static readonly HeaderField[] ResponseThree =
    [
        new(":status", "200"), new("cache-control", "private"), new("date", Date2), new("location", "https://www.example.com"), new("content-encoding", "gzip"), new("set-cookie", Cookie),
    ];

    public static TheoryData<string, string, string, string> SingleFields => new()
    {
        { "C.2.1", "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572", "custom-key", "custom-header" },
        { "C.2.2", "040c 2f73 616d 706c 652f 7061 7468", ":path", "/sample/path" },
        { "C.2.3", "1008 7061 7373 776f 7264 0673 6563 7265 74", "password", "secret" },
        { "C.2.4", "82", ":method", "GET" },
    };

    [Theory]
    [MemberData(nameof(SingleFields))]
    public void Decodes_the_single_field_examples(string section, string hex, string name, string value)
    {
        var decoder = new HpackDecoder();
        List<HeaderField> fields = decoder.Decode(Hex(hex));
        Assert.Equal([new HeaderField(name, value)], fields);
        // Only C.2.1 indexes its field.
        Assert.Equal(section == "C.2.1" ? 55 : 0, decoder.TableSize);
    }

    [Fact]
    public void Decodes_the_requests_without_huffman_on_one_table() => AssertChain(4096,
    [
        ("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", RequestOne, 57),
        ("8286 84be 5808 6e6f 2d63 6163 6865", RequestTwo, 110),
        ("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65", RequestThree, 164),
    ]);

    [Fact]
    public void Decodes_the_requests_with_huffman_on_one_table() => AssertChain(4096,
    [
        ("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", RequestOne, 57),
        ("8286 84be 5886 a8eb 1064 9cbf", RequestTwo, 110),
        ("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf", RequestThree, 164),
    ]);

    [Fact]
    public void Decodes_the_responses_without_huffman_with_eviction() => AssertChain(256,
    [
        ("4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32"
            + "3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", ResponseOne, 222),
        ("4803 3330 37c1 c0bf", ResponseTwo, 222),
        ("88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970"
            + "7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61"
            + "6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31", ResponseThree, 215),
    ]);

    [Fact]
    public void Decodes_the_responses_with_huffman_with_eviction()
    {
        HpackDecoder decoder = AssertChain(256,
        [
            ("4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad"
                + "1718 63c7 8f0b 97c8 e9ae 82ae 43d3", ResponseOne, 222),
            ("4883 640e ffc1 c0bf", ResponseTwo, 222),
            ("88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2"
                + "e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07", ResponseThree, 215),
        ]);
        // C.6.3's table: the newest entry first, the older ones evicted.
        Assert.Equal(3, decoder.TableCount);
        Assert.Equal(new HeaderField("set-cookie", Cookie), decoder.DynamicEntry(1));
        Assert.Equal(new HeaderField("content-encoding", "gzip"), decoder.DynamicEntry(2));
        Assert.Equal(new HeaderField("date", Date2), decoder.DynamicEntry(3));
    }

    [Theory]
    [InlineData("f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com")]
    [InlineData("640e ff", "307")]
    [InlineData("07", "0")]
    [InlineData("", "")]
    public void Huffman_decodes(string hex, string text)
    {
        byte[] input = Hex(hex);
        byte[] output = new byte[Huffman.MaxDecodedLength(input.Length)];
        int n = Huffman.Decode(input, output);
        Assert.Equal(text, System.Text.Encoding.Latin1.GetString(output, 0, n));
    }

    [Theory]
    [InlineData("00")] // padding of 0 bits: not a prefix of EOS
    [InlineData("07 ff")] // 8 bits of padding
    [InlineData("ff ff ff ff")] // the EOS code
    public void Huffman_refuses_bad_padding_and_eos(string hex)
    {
        byte[] input = Hex(hex);
        var e = Assert.Throws<Http2ConnectionException>(() => Huffman.Decode(input, new byte[16]));
        Assert.Equal(Http2ErrorCode.CompressionError, e.ErrorCode);
    }

    [Fact]
    public void Huffman_codes_every_byte_value_both_ways()
    {
        // Encode each byte with the table the decoder is built from, then decode it back.
        for (int symbol = 0; symbol < 256; symbol++)
        {
            ulong bits = Huffman.Codes[symbol];
            int length = Huffman.Lengths[symbol];
            int total = (length + 7) / 8 * 8;
            // Pad with 1s (the top bits of EOS).
            ulong padded = (bits << (total - length)) | ((1UL << (total - length)) - 1);
            byte[] encoded = new byte[total / 8];
            for (int i = 0; i < encoded.Length; i++)
            {
                encoded[i] = (byte)(padded >> (8 * (encoded.Length - 1 - i)));
            }

            byte[] output = new byte[8];
            Assert.Equal(1, Huffman.Decode(encoded, output));
            Assert.Equal(symbol, output[0]);
        }
    }

    [Theory]
    [InlineData("80")] // index 0
    [InlineData("be")] // index 62 with an empty dynamic table
    [InlineData("3fe21f")] // a table size update over SETTINGS_HEADER_TABLE_SIZE
    [InlineData("400a6375")] // a string past the end of the block
    [InlineData("41")] // a literal without its value
    [InlineData("82 20")] // a size update after a field
    [InlineData("ff ff ff ff ff ff 01")] // an integer over 2^31-1
    [InlineData("ff")] // a truncated integer
    public void Malformed_blocks_are_compression_errors(string hex)
    {
        var e = Assert.Throws<Http2ConnectionException>(() => new HpackDecoder().Decode(Hex(hex)));
        Assert.Equal(Http2ErrorCode.CompressionError, e.ErrorCode);
    }

    [Fact]
    public void A_header_list_over_the_limit_is_refused()
    {
        var buffer = new ArrayBufferWriter<byte>();
        HpackEncoder.Encode(buffer, [new HeaderField("x-big", new string('a', 200))]);
        var e = Assert.Throws<Http2ConnectionException>(() => new HpackDecoder(maxHeaderListSize: 100).Decode(buffer.WrittenSpan));
        Assert.Equal(Http2ErrorCode.CompressionError, e.ErrorCode);
    }

    [Fact]
    public void A_size_update_to_zero_empties_the_table()
    {
        var decoder = new HpackDecoder();
        decoder.Decode(Hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"));
        Assert.Equal(1, decoder.TableCount);
        Assert.Equal([new HeaderField(":method", "GET")], decoder.Decode(Hex("20 82")));
        Assert.Equal(0, decoder.TableCount);
        Assert.Equal(0, decoder.TableSize);
    }

    [Fact]
    public void The_encoder_writes_golden_bytes_and_round_trips()
    {
        var buffer = new ArrayBufferWriter<byte>();
        HeaderField[] fields = [new(":method", "CONNECT"), new(":authority", "10.0.0.2:8080"), new(":status", "200"), new("x-id", "é")];
        HpackEncoder.Encode(buffer, fields);
        // :method by name index 2 without indexing; :authority by name index 1; :status 200 indexed (8);
        // x-id a literal name; é one Latin-1 byte.
        Assert.Equal(
            Hex("02 07 434f4e4e454354 01 0d 31302e302e302e323a38303830 88 00 04 782d6964 01 e9"),
            buffer.WrittenSpan.ToArray());
        var decoder = new HpackDecoder();
        Assert.Equal(fields, decoder.Decode(buffer.WrittenSpan));
        Assert.Equal(0, decoder.TableCount);
    }

    [Theory]
    [InlineData(10, 5, "0a")]
    [InlineData(1337, 5, "1f 9a 0a")]
    [InlineData(42, 8, "2a")]
    public void Integers_follow_the_c1_examples(int value, int prefix, string hex)
    {
        var buffer = new ArrayBufferWriter<byte>();
        HpackInteger.Encode(buffer, value, prefix, 0);
        Assert.Equal(Hex(hex), buffer.WrittenSpan.ToArray());
        int offset = 0;
        Assert.Equal(value, HpackInteger.Decode(buffer.WrittenSpan, ref offset, prefix));
        Assert.Equal(buffer.WrittenCount, offset);
    }

    private static HpackDecoder AssertChain(int tableSize, (string Hex, HeaderField[] Fields, int TableSize)[] blocks)
    {
        var decoder = new HpackDecoder(tableSize);
        foreach ((string hex, HeaderField[] fields, int size) in blocks)
        {
            Assert.Equal(fields, decoder.Decode(Hex(hex)));
            Assert.Equal(size, decoder.TableSize);
        }

        return decoder;
    }

    internal static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));
}
