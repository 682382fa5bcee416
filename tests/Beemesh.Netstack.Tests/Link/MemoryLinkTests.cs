using Beemesh.Netstack.Link;

namespace Beemesh.Netstack.Tests.Link;

public class MemoryLinkTests
{
    [Fact]
    public void InjectedFrames_AreReadInOrder_ThenNothingIsReady()
    {
        using var link = new MemoryLink();
        link.Inject([1, 2, 3]);
        link.Inject([4]);
        var buffer = new byte[16];

        Assert.Equal(3, link.Read(buffer));
        Assert.Equal(new byte[] { 1, 2, 3 }, buffer[..3]);
        Assert.Equal(1, link.Read(buffer));
        Assert.Equal(4, buffer[0]);
        Assert.Equal(0, link.Read(buffer));
        Assert.Equal(-1, link.Fd);
    }

    [Fact]
    public void InjectCopiesTheCallersBuffer()
    {
        using var link = new MemoryLink();
        byte[] frame = [9, 9];
        link.Inject(frame);
        frame[0] = 0;
        var buffer = new byte[4];

        link.Read(buffer);
        Assert.Equal(9, buffer[0]);
    }

    [Fact]
    public void FrameLongerThanBuffer_IsCutAndCounted()
    {
        using var link = new MemoryLink();
        link.Inject(new byte[100]);

        Assert.Equal(10, link.Read(new byte[10]));
        Assert.Equal(1, link.TruncatedReads);
    }

    [Fact]
    public void EmptyFrames_AreDiscardedBecauseZeroMeansNothingReady()
    {
        using var link = new MemoryLink();
        link.Inject([]);
        link.Inject([7]);

        Assert.Equal(1, link.Read(new byte[4]));
        Assert.Equal(1, link.EmptyFramesDiscarded);
    }

    [Fact]
    public void WrittenFrames_AreTakenInOrder()
    {
        using var link = new MemoryLink(vnetHeader: true, offload: true);
        Assert.True(link.Write([1]));
        Assert.True(link.Write([2, 2]));

        Assert.True(link.VnetHeader);
        Assert.True(link.Offload);
        Assert.Equal(2, link.PendingOutbound);
        Assert.True(link.TryTake(out var first));
        Assert.Equal(new byte[] { 1 }, first);
        Assert.Equal(new byte[] { 2, 2 }, Assert.Single(link.TakeAll()));
        Assert.False(link.TryTake(out _));
    }

    [Fact]
    public void OffloadNeedsVnetHeader()
    {
        using var link = new MemoryLink(vnetHeader: false, offload: true);
        Assert.False(link.Offload);
    }

    [Fact]
    public void ClosedLink_ReportsGoneAfterDraining_AndRefusesWrites()
    {
        using var link = new MemoryLink();
        link.Inject([1]);
        link.Close();

        Assert.Equal(1, link.Read(new byte[4]));
        Assert.Equal(-1, link.Read(new byte[4]));
        Assert.False(link.Write([1]));
    }
}
