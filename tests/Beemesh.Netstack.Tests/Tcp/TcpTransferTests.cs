using Beemesh.Netstack.Tcp;

namespace Beemesh.Netstack.Tests.Tcp;

public class TcpTransferTests
{
    public static TheoryData<double, int> LossCases => new() { { 0.0, 1 }, { 0.05, 2 }, { 0.20, 3 } };

    [Theory]
    [MemberData(nameof(LossCases))]
    public void OneMegabyte_ByteExact_BothDirections_UnderLossReorderDuplication(double loss, int seed)
    {
        var link = new LinkProfile(Loss: loss, Duplicate: loss > 0 ? 0.05 : 0, Reorder: loss > 0 ? 0.1 : 0);
        var h = new TcpPairHarness(seed, link);
        byte[] up = TcpTestContext.Bytes(1 << 20, seed);
        byte[] down = TcpTestContext.Bytes(300_000, seed + 100);
        h.Client.Send(up, close: true);
        h.Server.Send(down, close: false);
        h.Connect();

        bool done = h.RunUntil(
            () => h.Client.Conn.State == TcpState.Closed && h.Server.Conn.State == TcpState.Closed,
            TimeSpan.FromHours(2));

        Assert.Equal(up, h.Server.Sink.All.ToArray());
        Assert.Equal(down, h.Client.Sink.All.ToArray());
        Assert.True(done, $"client {h.Client.Conn.State} server {h.Server.Conn.State}");
        Assert.Equal(up.Length, h.Client.Source.TotalDiscarded);
        Assert.Equal(down.Length, h.Server.Source.TotalDiscarded);
        Assert.True((h.Server.Events & TcpEvents.PeerFinished) != 0);
        Assert.True((h.Client.Events & TcpEvents.PeerFinished) != 0);
        Assert.True((h.Client.Events & TcpEvents.Closed) != 0);
        Assert.Equal(0, (int)(h.Client.Events & TcpEvents.Reset));
    }
}
