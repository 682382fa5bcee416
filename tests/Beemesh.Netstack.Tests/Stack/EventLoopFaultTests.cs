using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Stack;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// A handler that throws is contained where it threw: the loop reports it, abandons and
/// unregisters that handler, and runs every other ready handler, timer and posted action.
/// Readiness is real (eventfds created readable); the loop is driven with RunOnce(0).
/// </summary>
public sealed class EventLoopFaultTests : IDisposable
{
    private readonly FakeTimeProvider _time = new();
    private readonly EventLoop _loop;
    private readonly List<(IEventHandler? Handler, Exception Error)> _faults = [];
    private readonly List<int> _fds = [];

    public EventLoopFaultTests()
    {
        _loop = new EventLoop(_time);
        _loop.Faulted = (handler, error) =>
        {
            _faults.Add((handler, error));
            return true;
        };
    }

    [Fact]
    public void A_throwing_readiness_handler_is_abandoned_and_the_others_still_run()
    {
        var bad = new Handler { ThrowOnReady = true };
        var good1 = new Handler();
        var good2 = new Handler();
        int badFd = ReadableFd();
        _loop.Add(ReadableFd(), Sys.EPOLLIN, good1);
        _loop.Add(badFd, Sys.EPOLLIN, bad);
        _loop.Add(ReadableFd(), Sys.EPOLLIN, good2);

        _loop.RunOnce(0);

        Assert.Equal(1, good1.Ready);
        Assert.Equal(1, good2.Ready);
        var (handler, error) = Assert.Single(_faults);
        Assert.Same(bad, handler);
        Assert.IsType<InvalidOperationException>(error);
        Assert.Equal(1, bad.Abandoned);

        // The bad handler's fd is still readable (level-triggered) but no longer watched.
        _loop.RunOnce(0);
        Assert.Equal(1, bad.Ready);
        Assert.Equal(2, good1.Ready);
        Assert.Equal(2, good2.Ready);
        Assert.Single(_faults);
    }

    [Fact]
    public void A_throwing_timer_is_contained_and_later_timers_still_fire()
    {
        var first = new Handler();
        var bad = new Handler { ThrowOnTimer = true };
        var last = new Handler();
        _loop.Schedule(first, TimeSpan.FromMilliseconds(10));
        _loop.Schedule(bad, TimeSpan.FromMilliseconds(20));
        _loop.Schedule(last, TimeSpan.FromMilliseconds(30));
        _time.Advance(TimeSpan.FromMilliseconds(30));

        _loop.RunOnce(0);

        Assert.Equal(1, first.Timers);
        Assert.Equal(1, bad.Timers);
        Assert.Equal(1, last.Timers);
        Assert.Same(bad, Assert.Single(_faults).Handler);
        Assert.Equal(1, bad.Abandoned);
        Assert.Equal(0, _loop.PendingTimers);
    }

    [Fact]
    public void A_handler_that_rearms_and_then_throws_leaves_no_timer_behind()
    {
        var bad = new Handler { ThrowOnReady = true, RearmOnReady = TimeSpan.FromSeconds(60), Loop = _loop };
        _loop.Add(ReadableFd(), Sys.EPOLLIN, bad);

        _loop.RunOnce(0);

        Assert.Equal(1, bad.Abandoned);
        Assert.Equal(0, _loop.PendingTimers); // nothing keeps the abandoned handler reachable
    }

    [Fact]
    public void A_throwing_posted_action_does_not_stop_the_ones_after_it()
    {
        var ran = new List<int>();
        _loop.Post(() => ran.Add(1));
        _loop.Post(() => throw new InvalidOperationException("posted"));
        _loop.Post(() => ran.Add(3));

        _loop.RunOnce(0);

        Assert.Equal([1, 3], ran);
        var (handler, error) = Assert.Single(_faults);
        Assert.Null(handler);
        Assert.Equal("posted", error.Message);
    }

    [Fact]
    public void A_fault_the_owner_declines_to_contain_ends_the_iteration_with_the_original_exception()
    {
        _loop.Faulted = (_, _) => false;
        var essential = new Handler { ThrowOnReady = true };
        _loop.Add(ReadableFd(), Sys.EPOLLIN, essential);

        var e = Assert.Throws<InvalidOperationException>(() => _loop.RunOnce(0));

        Assert.Equal("ready", e.Message);
        Assert.Equal(0, essential.Abandoned);
    }

    [Fact]
    public void Running_out_of_stack_is_never_contained()
    {
        var broken = new Handler { Fatal = true };
        _loop.Add(ReadableFd(), Sys.EPOLLIN, broken);

        Assert.Throws<InsufficientExecutionStackException>(() => _loop.RunOnce(0));

        Assert.Empty(_faults);
        Assert.Equal(0, broken.Abandoned);
    }

    [Fact]
    public void A_throwing_abandon_is_swallowed_and_the_registration_still_dropped()
    {
        var bad = new Handler { ThrowOnReady = true, ThrowOnAbandon = true };
        var good = new Handler();
        _loop.Add(ReadableFd(), Sys.EPOLLIN, bad);
        _loop.Add(ReadableFd(), Sys.EPOLLIN, good);

        _loop.RunOnce(0);
        _loop.RunOnce(0);

        Assert.Equal(1, bad.Ready);
        Assert.Equal(2, good.Ready);
        Assert.Single(_faults);
    }

    public void Dispose()
    {
        _loop.Dispose();
        foreach (int fd in _fds)
        {
            Sys.close(fd);
        }
    }

    /// <summary>An eventfd with a count of 1: readable until read (the handlers never read it).</summary>
    private int ReadableFd()
    {
        int fd = Sys.eventfd(1, Sys.EFD_NONBLOCK | Sys.EFD_CLOEXEC);
        Assert.True(fd >= 0);
        _fds.Add(fd);
        return fd;
    }

    private sealed class Handler : IEventHandler
    {
        public bool ThrowOnReady { get; init; }

        public bool ThrowOnTimer { get; init; }

        public bool ThrowOnAbandon { get; init; }

        public bool Fatal { get; init; }

        public TimeSpan? RearmOnReady { get; init; }

        public EventLoop? Loop { get; init; }

        public int Ready { get; private set; }

        public int Timers { get; private set; }

        public int Abandoned { get; private set; }

        public void OnReady(uint events)
        {
            Ready++;
            if (RearmOnReady is { } deadline)
            {
                Loop!.Schedule(this, deadline);
            }

            if (Fatal)
            {
                throw new InsufficientExecutionStackException();
            }

            if (ThrowOnReady)
            {
                throw new InvalidOperationException("ready");
            }
        }

        public void OnTimer()
        {
            Timers++;
            if (ThrowOnTimer)
            {
                throw new InvalidOperationException("timer");
            }
        }

        public void Abandon()
        {
            Abandoned++;
            if (ThrowOnAbandon)
            {
                throw new InvalidOperationException("abandon");
            }
        }
    }
}
