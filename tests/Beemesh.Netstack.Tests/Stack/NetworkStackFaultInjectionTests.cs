using Beemesh.Netstack.Link;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>The stack behind a <see cref="FaultInjectingLink"/>: damaged delivery never produces a damaged frame.</summary>
public class NetworkStackFaultInjectionTests
{
    [Fact]
    public void DuplicatedRequests_AreEachAnswered_AndRepliesDuplicatedOnTheWayOut()
    {
        var memory = new MemoryLink();
        var faulty = new FaultInjectingLink(memory, seed: 3) { DuplicationRate = 1 };
        using var ctx = new StackTestContext(link: faulty);
        memory.Inject(ArpRequest(GatewayIp));

        ctx.Stack.PumpOnce();

        var frames = memory.TakeAll();
        Assert.Equal(4, frames.Count); // 2 requests read, each reply written twice
        Assert.All(frames, f => EmittedFrameChecker.AssertWellFormed(f, vnet: false));
        Assert.Equal(2, ctx.Counters.FramesReceived);
        Assert.Equal(3, faulty.FramesDuplicated);
    }

    [Fact]
    public void LossyReorderingLink_StillYieldsOnlyWellFormedReplies()
    {
        var memory = new MemoryLink();
        var faulty = new FaultInjectingLink(memory, seed: 11) { LossRate = 0.2, ReorderRate = 0.3, DuplicationRate = 0.2 };
        using var ctx = new StackTestContext(link: faulty);
        for (ushort i = 0; i < 100; i++)
        {
            memory.Inject(IcmpEcho4Frame(GuestIp, GatewayIp, 9, i, new byte[16]));
        }

        while (memory.PendingInbound > 0)
        {
            ctx.Stack.PumpOnce();
        }

        ctx.Stack.PumpOnce();
        faulty.ReleaseHeldOutbound();
        var frames = memory.TakeAll();
        Assert.All(frames, f => EmittedFrameChecker.AssertWellFormed(f, vnet: false));
        Assert.Equal(ctx.Counters.IcmpEchoAnswered, ctx.Counters.FramesReceived);
        Assert.True(faulty.FramesDropped > 0 && faulty.FramesReordered > 0 && faulty.FramesDuplicated > 0);
        Assert.True(frames.Count > 0 && frames.Count < 200);
    }
}
