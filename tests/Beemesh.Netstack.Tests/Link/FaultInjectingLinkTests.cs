using Beemesh.Netstack.Link;

namespace Beemesh.Netstack.Tests.Link;

public class FaultInjectingLinkTests
{
    [Fact]
    public void NoFaults_PassesEverythingThrough()
    {
        var inner = new MemoryLink();
        using var link = new FaultInjectingLink(inner, seed: 1);
        inner.Inject([1]);
        inner.Inject([2]);
        link.Write([3]);

        Assert.Equal([1, 2], ReadAll(link));
        Assert.Equal(new byte[] { 3 }, Assert.Single(inner.TakeAll()));
        Assert.Equal(0, link.FramesDropped + link.FramesDuplicated + link.FramesReordered);
    }

    [Fact]
    public void FullLoss_DropsBothDirections_AndWritesStillReportSuccess()
    {
        var inner = new MemoryLink();
        using var link = new FaultInjectingLink(inner, seed: 1) { LossRate = 1 };
        inner.Inject([1]);
        inner.Inject([2]);

        Assert.Empty(ReadAll(link));
        Assert.True(link.Write([3]));
        Assert.Empty(inner.TakeAll());
        Assert.Equal(3, link.FramesDropped);
    }

    [Fact]
    public void FullDuplication_DeliversEveryFrameTwice()
    {
        var inner = new MemoryLink();
        using var link = new FaultInjectingLink(inner, seed: 1) { DuplicationRate = 1 };
        inner.Inject([1]);
        inner.Inject([2]);
        link.Write([3]);

        Assert.Equal([1, 1, 2, 2], ReadAll(link));
        Assert.Equal(2, inner.TakeAll().Count);
        Assert.Equal(3, link.FramesDuplicated);
    }

    [Fact]
    public void Reorder_HoldsAFrameBehindTheNextOne()
    {
        var inner = new MemoryLink();
        using var link = new FaultInjectingLink(inner, seed: 1) { ReorderRate = 1 };
        inner.Inject([1]);
        inner.Inject([2]);
        inner.Inject([3]);

        // 1 is held, 2 cannot be held as well (one slot) and passes, then 1; 3 is held until the batch ends.
        Assert.Equal([2, 1, 3], ReadAll(link));
        Assert.Equal(2, link.FramesReordered);
    }

    [Fact]
    public void HeldOutboundFrame_GoesOutAfterTheNextWrite_OrOnTheNextRead()
    {
        var inner = new MemoryLink();
        using var link = new FaultInjectingLink(inner, seed: 1) { ReorderRate = 1 };

        link.Write([1]);
        Assert.Empty(inner.TakeAll());
        link.Write([2]);
        Assert.Equal([2, 1], inner.TakeAll().Select(f => (int)f[0]));

        link.Write([3]);
        Assert.Empty(inner.TakeAll());
        Assert.Equal(0, link.Read(new byte[4]));
        Assert.Equal(3, Assert.Single(inner.TakeAll())[0]);
    }

    [Fact]
    public void SameSeed_MakesTheSameDecisions()
    {
        Assert.Equal(Run(42), Run(42));
        Assert.NotEqual(Run(42), Run(43));

        static List<int> Run(int seed)
        {
            var inner = new MemoryLink();
            using var link = new FaultInjectingLink(inner, seed) { LossRate = 0.2, DuplicationRate = 0.2, ReorderRate = 0.2 };
            for (int i = 0; i < 200; i++)
            {
                inner.Inject([(byte)i]);
            }

            return ReadAll(link);
        }
    }

    [Fact]
    public void PassesLinkPropertiesThrough()
    {
        using var link = new FaultInjectingLink(new MemoryLink(vnetHeader: true, offload: true), seed: 0);
        Assert.Equal(-1, link.Fd);
        Assert.True(link.VnetHeader);
        Assert.True(link.Offload);
    }

    private static List<int> ReadAll(ILinkDevice link)
    {
        var result = new List<int>();
        var buffer = new byte[64];
        int n;
        while ((n = link.Read(buffer)) > 0)
        {
            result.Add(buffer[0]);
        }

        return result;
    }
}
