using Beemesh.Netstack.Wire;
using FsCheck.Xunit;

namespace Beemesh.Netstack.Tests.Wire;

public class InternetChecksumTests
{
    [Fact]
    public void Rfc1071Example()
    {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
        byte[] data = Hex.Bytes("0001 f203 f4f5 f6f7");
        Assert.Equal(0xddf2u, InternetChecksum.Sum(data));
        Assert.Equal(0x220d, InternetChecksum.Compute(data));
    }

    [Fact]
    public void OddLengthPadsTheLastByteWithZero()
    {
        Assert.Equal(InternetChecksum.Compute(Hex.Bytes("0102 03")), InternetChecksum.Compute(Hex.Bytes("0102 0300")));
        Assert.Equal(0xFBFD, InternetChecksum.Compute(Hex.Bytes("0102 03")));
    }

    [Fact]
    public void EmptyDataChecksumsToAllOnes() => Assert.Equal(0xFFFF, InternetChecksum.Compute([]));

    [Fact]
    public void CapturedIpv4HeaderVerifies()
    {
        byte[] frame = Captures.TcpSyn;
        Assert.Equal(0, InternetChecksum.Compute(frame.AsSpan(14, 20)));
    }

    [Fact]
    public void VectorAndScalarAgreeForEveryLengthAndAlignment()
    {
        Random random = new(1234);
        byte[] data = new byte[2100];
        random.NextBytes(data);
        for (int start = 0; start < 3; start++)
        {
            for (int length = 0; length <= 2000; length += length < 200 ? 1 : 37)
            {
                ReadOnlySpan<byte> slice = data.AsSpan(start, length);
                Assert.Equal(InternetChecksum.SumScalar(slice), InternetChecksum.Sum(slice));
            }
        }
    }

    [Fact]
    public void AllOnesDataDoesNotOverflow()
    {
        byte[] data = new byte[70_001];
        data.AsSpan().Fill(0xFF);
        Assert.Equal(InternetChecksum.SumScalar(data, 0xFFFF), InternetChecksum.Sum(data, 0xFFFF));
    }

    [Property(MaxTest = 300)]
    public bool VectorMatchesScalarOnRandomData(byte[] data, ushort initial) =>
        InternetChecksum.Sum(data, initial) == InternetChecksum.SumScalar(data, initial);

    [Property(MaxTest = 300)]
    public bool LargeRandomDataMatchesScalar(int seed, ushort length)
    {
        byte[] data = new byte[length];
        new Random(seed).NextBytes(data);
        return InternetChecksum.Sum(data) == InternetChecksum.SumScalar(data);
    }

    [Property(MaxTest = 300)]
    public bool ChainingAtAnEvenSplitEqualsOneSum(byte[] data, byte split)
    {
        int at = Math.Min(split & ~1, data.Length & ~1);
        uint chained = InternetChecksum.Sum(data.AsSpan(at), InternetChecksum.Sum(data.AsSpan(0, at)));
        return chained == InternetChecksum.Sum(data);
    }

    [Property(MaxTest = 300)]
    public bool FillingTheChecksumMakesTheDataVerify(byte[] payload)
    {
        byte[] data = new byte[payload.Length + 2];
        payload.CopyTo(data, 2);
        ushort checksum = InternetChecksum.Compute(data);
        data[0] = (byte)(checksum >> 8);
        data[1] = (byte)checksum;
        return InternetChecksum.Compute(data) == 0;
    }

    [Fact]
    public void PseudoHeaderV4MatchesExplicitBytes()
    {
        Ipv4Address source = new(10, 0, 2, 15);
        Ipv4Address destination = new(93, 184, 216, 34);
        byte[] pseudo = Hex.Bytes("0a00 020f 5db8 d822 0006 0123");
        Assert.Equal(InternetChecksum.Sum(pseudo), InternetChecksum.PseudoHeaderV4(source, destination, IpProtocol.Tcp, 0x123));
    }

    [Fact]
    public void PseudoHeaderV6MatchesExplicitBytes()
    {
        Ipv6Address source = Ipv6Address.Parse("fd00::100");
        Ipv6Address destination = Ipv6Address.Parse("2001:db8:ffff::1:2");
        byte[] pseudo = new byte[40];
        source.CopyTo(pseudo);
        destination.CopyTo(pseudo.AsSpan(16));
        pseudo[33] = 0x01;
        pseudo[34] = 0x02;
        pseudo[35] = 0x03;
        pseudo[39] = 58;
        Assert.Equal(InternetChecksum.Sum(pseudo), InternetChecksum.PseudoHeaderV6(source, destination, IpProtocol.Icmpv6, 0x010203));
    }
}
