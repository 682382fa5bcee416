using System.Threading.Channels;
using Beemesh.Agent.Mesh;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Agent.Tests.Mesh;

/// <summary>
/// The shared pass loop of the route and policy syncs on a fake clock: each pass is held open by the
/// test and moves the clock only by what the test says it took, so what runs when is decided by the
/// test alone.
/// </summary>
public sealed class PassLoopTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Passes the test holds: each started one waits for its gate, then moves the clock by the time
    /// the gate gives (what the pass took).
    /// </summary>
    private sealed class HeldPasses(FakeTimeProvider time)
    {
        private readonly Channel<(int Number, bool AfterMark, TaskCompletionSource<TimeSpan> Gate)> _started =
            Channel.CreateUnbounded<(int, bool, TaskCompletionSource<TimeSpan>)>();
        private int _count;

        public volatile bool Mark;

        public async Task RunAsync()
        {
            var gate = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
            _started.Writer.TryWrite((Interlocked.Increment(ref _count), Mark, gate));
            TimeSpan took = await gate.Task;
            if (took > TimeSpan.Zero)
            {
                time.Advance(took);
            }
        }

        public async Task<(int Number, bool AfterMark, TaskCompletionSource<TimeSpan> Gate)> NextAsync()
        {
            using var patience = new CancellationTokenSource(Patience);
            return await _started.Reader.ReadAsync(patience.Token);
        }
    }

    [Fact]
    public async Task RequestsDuringAPassAreOneNextPass()
    {
        var time = new FakeTimeProvider();
        var held = new HeldPasses(time);
        await using var loop = new PassLoop(held.RunAsync, time, TimeSpan.FromHours(1));

        var first = await held.NextAsync();
        Assert.Equal(1, first.Number);
        loop.Request();
        loop.Request();
        loop.Request();
        first.Gate.SetResult(TimeSpan.Zero);

        var second = await held.NextAsync();
        Assert.Equal(2, second.Number);
        second.Gate.SetResult(TimeSpan.Zero);

        // Nothing else was asked for: the next pass is the one this request starts, not a leftover.
        held.Mark = true;
        loop.Request();
        var third = await held.NextAsync();
        Assert.Equal(3, third.Number);
        Assert.True(third.AfterMark, "a pass ran for requests an earlier pass had already taken");
        third.Gate.SetResult(TimeSpan.Zero);
    }

    [Fact]
    public async Task APassThatTookLongIsFollowedByAsLongARest()
    {
        var time = new WatchedClock();
        var held = new HeldPasses(time);
        await using var loop = new PassLoop(held.RunAsync, time, TimeSpan.FromHours(1));
        Assert.Equal(TimeSpan.FromHours(1), await time.NextTimerAsync()); // the sweep

        var first = await held.NextAsync();
        loop.Request();
        first.Gate.SetResult(TimeSpan.FromSeconds(5)); // the first pass takes 5 s of the clock

        // The rest after it is 5 s of the clock: 4 s are not enough, the 5th is.
        Assert.Equal(TimeSpan.FromSeconds(5), await time.NextTimerAsync());
        time.Advance(TimeSpan.FromSeconds(4));
        held.Mark = true;
        time.Advance(TimeSpan.FromSeconds(1));
        var second = await held.NextAsync();
        Assert.True(second.AfterMark, "the pass after a 5 s one started before a 5 s rest");
        second.Gate.SetResult(TimeSpan.Zero);
    }

    /// <summary>A fake clock that reports each timer made on it (Task.Delay included).</summary>
    private sealed class WatchedClock : FakeTimeProvider
    {
        private readonly Channel<TimeSpan> _timers = Channel.CreateUnbounded<TimeSpan>();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            _timers.Writer.TryWrite(dueTime);
            return base.CreateTimer(callback, state, dueTime, period);
        }

        public async Task<TimeSpan> NextTimerAsync()
        {
            using var patience = new CancellationTokenSource(Patience);
            return await _timers.Reader.ReadAsync(patience.Token);
        }
    }
}
