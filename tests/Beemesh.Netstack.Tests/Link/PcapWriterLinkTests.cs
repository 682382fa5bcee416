using System.Buffers.Binary;
using Beemesh.Netstack.Link;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Tests.Stack;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Netstack.Tests.Link;

public class PcapWriterLinkTests
{
    private static readonly DateTimeOffset Start = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void WritesGlobalHeaderAndOneRecordPerFrame_WithoutVnetHeader()
    {
        var inner = new MemoryLink(vnetHeader: true);
        var output = new MemoryStream();
        var time = new FakeTimeProvider(Start);
        using var link = new PcapWriterLink(inner, output, time);
        inner.Inject(new byte[10 + 60]);
        var buffer = new byte[128];

        Assert.Equal(70, link.Read(buffer));
        time.Advance(TimeSpan.FromMilliseconds(1.5));
        Assert.True(link.Write(new byte[10 + 42]));

        byte[] pcap = output.ToArray();
        Assert.Equal(24 + 16 + 60 + 16 + 42, pcap.Length);
        Assert.Equal(0xA1B2C3D4u, BinaryPrimitives.ReadUInt32LittleEndian(pcap));
        Assert.Equal(2, BinaryPrimitives.ReadUInt16LittleEndian(pcap.AsSpan(4)));
        Assert.Equal(4, BinaryPrimitives.ReadUInt16LittleEndian(pcap.AsSpan(6)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(pcap.AsSpan(20)));
        Assert.Equal((uint)Start.ToUnixTimeSeconds(), BinaryPrimitives.ReadUInt32LittleEndian(pcap.AsSpan(24)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(pcap.AsSpan(28)));
        Assert.Equal(60u, BinaryPrimitives.ReadUInt32LittleEndian(pcap.AsSpan(32)));
        Assert.Equal(60u, BinaryPrimitives.ReadUInt32LittleEndian(pcap.AsSpan(36)));
        int second = 24 + 16 + 60;
        Assert.Equal(1500u, BinaryPrimitives.ReadUInt32LittleEndian(pcap.AsSpan(second + 4)));
        Assert.Equal(42u, BinaryPrimitives.ReadUInt32LittleEndian(pcap.AsSpan(second + 8)));
        Assert.Equal(2, link.FramesRecorded);
        Assert.Single(inner.TakeAll());
    }

    [Fact]
    public void FramesLongerThanSnapLength_AreCutButKeepTheirLength()
    {
        var output = new MemoryStream();
        using var link = new PcapWriterLink(new MemoryLink(), output, snapLength: 100);
        link.Write(new byte[300]);

        byte[] pcap = output.ToArray();
        Assert.Equal(24 + 16 + 100, pcap.Length);
        Assert.Equal(100u, BinaryPrimitives.ReadUInt32LittleEndian(pcap.AsSpan(32)));
        Assert.Equal(300u, BinaryPrimitives.ReadUInt32LittleEndian(pcap.AsSpan(36)));
    }

    [SkippableFact]
    public void Capture_OfAStackExchange_IsReadableByTcpdump()
    {
        Skip.IfNot(File.Exists("/usr/bin/tcpdump") || File.Exists("/usr/sbin/tcpdump"), "tcpdump is not installed");
        string path = Path.Combine(Path.GetTempPath(), $"beemesh-pcap-{Guid.NewGuid():N}.pcap");
        try
        {
            var inner = new MemoryLink(vnetHeader: true);
            var pcap = new PcapWriterLink(inner, path, new FakeTimeProvider(Start));
            using (var stack = new NetworkStack(new StackOptions(), pcap, new FakeTimeProvider(Start)))
            {
                inner.Inject(TestFrames.WithVnet(TestFrames.ArpRequest(TestFrames.GatewayIp)));
                inner.Inject(TestFrames.WithVnet(TestFrames.IcmpEcho4Frame(TestFrames.GuestIp, TestFrames.GatewayIp, 5, 1, "abcdefgh"u8)));
                stack.PumpOnce();
                Assert.Equal(2, inner.TakeAll().Count);
            }

            var (exit, output) = Commands.Run("tcpdump", "-nn", "-r", path);

            Assert.True(exit == 0, output);
            Assert.Contains("ARP, Request who-has 10.0.2.2 tell 10.0.2.100", output);
            Assert.Contains("ARP, Reply 10.0.2.2 is-at 52:55:0a:00:02:02", output);
            Assert.Contains("10.0.2.100 > 10.0.2.2: ICMP echo request, id 5, seq 1", output);
            Assert.Contains("10.0.2.2 > 10.0.2.100: ICMP echo reply, id 5, seq 1", output);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
