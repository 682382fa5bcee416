using Beemesh.State.Eventual;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>Golden bytes and refused input of the eventual store's replication messages.</summary>
public sealed class EventualWireTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", string.Empty, StringComparison.Ordinal));

    [Fact]
    public void ADigestIsTheBucketCountThenEachBucketLittleEndian()
    {
        var digest = new ulong[DigestBuckets.Count];
        digest[0] = 0x0102030405060708;
        digest[^1] = 0xFF;
        byte[] body = EventualWire.EncodeDigest(digest);

        Assert.Equal(2 + (8 * 1024), body.Length);
        Assert.Equal(Hex("0004 0807060504030201"), body[..10]);
        Assert.Equal(Hex("FF00000000000000"), body[^8..]);
        Assert.True(EventualWire.TryDecodeDigest(body, out ulong[] back, out string? error), error);
        Assert.Equal(digest, back);
    }

    [Fact]
    public void ASummaryIsItsBucketsThenKeyStampPairs()
    {
        var summary = new BucketSummary([5, 1023], [new EntryStamp("a||k", new HybridTimestamp(0x10, 2))]);
        byte[] golden = Hex("0200 0500 FF03 01000000 0400 617C7C6B 1000000000000000 0200000000000000");
        Assert.Equal(golden, EventualWire.EncodeSummary(summary));

        Assert.True(EventualWire.TryDecodeSummary(golden, 10, out BucketSummary back, out string? error), error);
        Assert.Equal([5, 1023], back.Buckets);
        Assert.Equal(summary.Stamps, back.Stamps);
    }

    [Fact]
    public void EntriesAreValuesAndTombstonesThenWantedKeys()
    {
        StateEntry value = new("a||k", [0xAB, 0xCD], new HybridTimestamp(0x0203, 7), 0x1122);
        StateEntry tombstone = new("a||t", null, new HybridTimestamp(1, 1), 0);
        byte[] golden = Hex(
            "02000000" +
            "0400 617C7C6B 0302000000000000 0700000000000000 2211000000000000 00 02000000 ABCD" +
            "0400 617C7C74 0100000000000000 0100000000000000 0000000000000000 01" +
            "01000000 0400 617C7C77");
        Assert.Equal(golden, EventualWire.EncodeEntries([value, tombstone], ["a||w"]));

        Assert.True(EventualWire.TryDecodeEntries(golden, 10, out List<StateEntry> entries, out List<string> want, out string? error), error);
        Assert.Equal(2, entries.Count);
        Assert.Equal(value.Value, entries[0].Value);
        Assert.Equal(value with { Value = entries[0].Value }, entries[0]);
        Assert.Equal(tombstone, entries[1]);
        Assert.Equal(["a||w"], want);
    }

    [Theory]
    [InlineData("", "a digest must have 1024 buckets")]
    [InlineData("0004 00", "the digest is cut short")]
    [InlineData("0100 0000000000000000", "a digest must have 1024 buckets")]
    public void BadDigestsAreRefused(string hex, string reason)
    {
        Assert.False(EventualWire.TryDecodeDigest(Hex(hex), out _, out string? error));
        Assert.Equal(reason, error);
    }

    [Theory]
    [InlineData("0100 0004 00000000", "bad bucket number in a summary")]
    [InlineData("0104", "bad bucket count in a summary")]
    [InlineData("0000 0B000000", "11 items in one frame (limit 10)")]
    [InlineData("0000 02000000 0100 61", "2 items cannot fit in the 3 bytes left")]
    [InlineData("0000 01000000 0100 FF 0000000000000000 0000000000000000", "a key is not valid UTF-8")]
    [InlineData("0000 01000000 0100 61 00000000000000F0 0000000000000000", "a stamp has negative ticks")]
    [InlineData("0000 00000000 00", "1 bytes after the end of the message")]
    public void BadSummariesAreRefused(string hex, string reason)
    {
        Assert.False(EventualWire.TryDecodeSummary(Hex(hex), 10, out _, out string? error));
        Assert.Equal(reason, error);
    }

    [Theory]
    [InlineData("0B000000", "11 items in one frame (limit 10)")]
    [InlineData("01000000 0100 61 0100000000000000 0100000000000000 0000000000000000 02" + "0000000000000000000000", "unknown entry flags 2")]
    [InlineData("01000000 0100 61 0100000000000000 0100000000000000 0000000000000000 00 FFFFFFFF" + "00000000000000000000", "an entry's value is cut short")]
    [InlineData("01000000 0100 61 0100000000000000 0100000000000000 00000000000000F0 01" + "0000000000000000000000", "an entry is cut short or expires before 1970")]
    [InlineData("00000000 0B000000", "11 items in one frame (limit 10)")]
    [InlineData("00000000", "a count is cut short")]
    public void BadEntriesAreRefused(string hex, string reason)
    {
        Assert.False(EventualWire.TryDecodeEntries(Hex(hex), 10, out _, out _, out string? error));
        Assert.Equal(reason, error);
    }

    [FsCheck.Xunit.Property]
    public bool AnyBytesDecodeOrAreRefusedWithAReason(byte[] junk)
    {
        bool entries = EventualWire.TryDecodeEntries(junk, 100, out _, out _, out string? e1);
        bool summary = EventualWire.TryDecodeSummary(junk, 100, out _, out string? e2);
        bool digest = EventualWire.TryDecodeDigest(junk, out _, out string? e3);
        return (entries || e1 is not null) && (summary || e2 is not null) && (digest || e3 is not null);
    }
}
