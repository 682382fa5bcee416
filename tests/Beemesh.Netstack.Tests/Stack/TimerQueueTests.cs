using Beemesh.Netstack.Stack;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>The event loop's timer heap: order, one deadline per handler, cancellation and shrinking.</summary>
public class TimerQueueTests
{
    [Fact]
    public void DueTimers_ComeOutInDeadlineOrder_AndNotBeforeTheirTime()
    {
        var q = new TimerQueue();
        var a = new Handler("a");
        var b = new Handler("b");
        var c = new Handler("c");
        q.Schedule(b, TimeSpan.FromSeconds(2));
        q.Schedule(c, TimeSpan.FromSeconds(3));
        q.Schedule(a, TimeSpan.FromSeconds(1));

        Assert.True(q.TryPeek(out var first));
        Assert.Equal(TimeSpan.FromSeconds(1), first);
        Assert.Equal(["a", "b"], TakeDue(q, TimeSpan.FromSeconds(2.5)));
        Assert.Equal(1, q.Count);
        Assert.Empty(TakeDue(q, TimeSpan.FromSeconds(2.9)));
        Assert.Equal(["c"], TakeDue(q, TimeSpan.FromSeconds(3)));
        Assert.False(q.TryPeek(out _));
    }

    [Fact]
    public void Schedule_KeepsOneEntryPerHandler_AtTheEarlierDeadline()
    {
        var q = new TimerQueue();
        var h = new Handler("h");
        q.Schedule(h, TimeSpan.FromSeconds(60)); // a keepalive
        q.Schedule(h, TimeSpan.FromSeconds(90)); // later: the handler finds it when the earlier one fires
        Assert.Equal(1, q.Count);
        Assert.Equal(TimeSpan.FromSeconds(60), q.DeadlineOf(h));

        q.Schedule(h, TimeSpan.FromSeconds(1)); // an RTO: moves the entry earlier
        Assert.Equal(1, q.Count);
        Assert.Equal(TimeSpan.FromSeconds(1), q.DeadlineOf(h));
        Assert.Equal(["h"], TakeDue(q, TimeSpan.FromSeconds(1)));
        Assert.Equal(0, q.Count);
        Assert.Null(q.DeadlineOf(h));
    }

    [Fact]
    public void Cancel_RemovesOnlyThatHandler()
    {
        var q = new TimerQueue();
        var handlers = Enumerable.Range(0, 10).Select(i => new Handler(i.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToArray();
        for (int i = 0; i < handlers.Length; i++)
        {
            q.Schedule(handlers[i], TimeSpan.FromSeconds(i));
        }

        Assert.True(q.Cancel(handlers[0]));
        Assert.True(q.Cancel(handlers[5]));
        Assert.False(q.Cancel(handlers[5]));
        Assert.Equal(["1", "2", "3", "4", "6", "7", "8", "9"], TakeDue(q, TimeSpan.FromSeconds(100)));
    }

    [Fact]
    public void AfterABurst_TheHeapShrinksWithItsEntries()
    {
        var q = new TimerQueue();
        var burst = Enumerable.Range(0, 100_000).Select(i => new Handler("x")).ToArray();
        foreach (var h in burst)
        {
            q.Schedule(h, TimeSpan.FromSeconds(60));
        }

        int peak = q.Capacity;
        Assert.True(peak >= burst.Length);
        foreach (var h in burst.AsSpan(10))
        {
            q.Cancel(h);
        }

        Assert.Equal(10, q.Count);
        Assert.True(q.Capacity <= 64, $"capacity {q.Capacity} after the burst ended (peak {peak})");
        Assert.Equal(10, TakeDue(q, TimeSpan.FromSeconds(60)).Count);
    }

    [Fact]
    public void RandomOperations_MatchASortedModel()
    {
        var random = new Random(42);
        var q = new TimerQueue();
        var handlers = Enumerable.Range(0, 200).Select(i => new Handler(i.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToArray();
        var model = new Dictionary<Handler, TimeSpan>();
        var now = TimeSpan.Zero;
        for (int step = 0; step < 20_000; step++)
        {
            var h = handlers[random.Next(handlers.Length)];
            switch (random.Next(4))
            {
                case 0:
                case 1:
                    var deadline = now + TimeSpan.FromMilliseconds(random.Next(1, 1000));
                    q.Schedule(h, deadline);
                    model[h] = model.TryGetValue(h, out var queued) && queued <= deadline ? queued : deadline;
                    break;
                case 2:
                    Assert.Equal(model.Remove(h), q.Cancel(h));
                    break;
                default:
                    now += TimeSpan.FromMilliseconds(random.Next(0, 300));
                    var previous = TimeSpan.MinValue;
                    while (q.TryTakeDue(now, out var due))
                    {
                        var taken = (Handler)due;
                        Assert.True(model.Remove(taken, out var expected), "a handler came out that was not queued");
                        Assert.True(expected <= now);
                        Assert.True(expected >= previous, "out of order");
                        previous = expected;
                    }

                    Assert.DoesNotContain(model.Values, d => d <= now);
                    break;
            }

            Assert.Equal(model.Count, q.Count);
        }
    }

    private static List<string> TakeDue(TimerQueue q, TimeSpan now)
    {
        var names = new List<string>();
        while (q.TryTakeDue(now, out var h))
        {
            names.Add(((Handler)h).Name);
        }

        return names;
    }

    private sealed class Handler(string name) : IEventHandler
    {
        public string Name { get; } = name;

        public void OnReady(uint events)
        {
        }

        public void OnTimer()
        {
        }
    }
}
