using Beemesh.Spiffe;
using Beemesh.Spiffe.WorkloadApi;
using Beemesh.Spiffe.X509;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Identity.Tests.WorkloadApi;

public sealed class X509SourceTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task RetriesAfterPermissionDeniedUntilTheCallerIsRegistered()
    {
        await using var fixture = new WorkloadApiFixture();
        WorkloadApiClient client = await fixture.StartServerAsync(selfId: null);
        var clock = new TimerSignallingClock();
        await using var source = new X509Source(client, clock);
        source.Start();

        // The first attempt was refused and the source is now waiting out its backoff.
        await clock.TimerCreated.WaitAsync(Guard);
        Assert.False(source.HasContext);
        Assert.False(source.Completion.IsCompleted);

        Assert.True(fixture.Workloads[0].Register(Environment.ProcessId, SpiffeId.Parse("spiffe://example.org/late")));
        clock.Advance(TimeSpan.FromSeconds(1));
        await source.WaitForUpdateAsync().WaitAsync(Guard);
        Assert.Equal("spiffe://example.org/late", source.Current.DefaultSvid.Id.ToString());
    }

    /// <summary>A fake clock that reports when someone starts waiting on it.</summary>
    private sealed class TimerSignallingClock : FakeTimeProvider
    {
        private readonly SemaphoreSlim _created = new(0);

        public TimerSignallingClock()
            : base(DateTimeOffset.UtcNow)
        {
        }

        public Task TimerCreated => _created.WaitAsync();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            ITimer timer = base.CreateTimer(callback, state, dueTime, period);
            _created.Release();
            return timer;
        }
    }
}
