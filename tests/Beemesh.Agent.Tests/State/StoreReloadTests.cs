using System.Diagnostics;
using Beemesh.Agent.Client;
using Beemesh.Agent.Policies;
using Beemesh.Agent.Tests.Policies;
using Beemesh.Agent.Workloads;

namespace Beemesh.Agent.Tests.State;

public sealed class StoreReloadTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bm-sr-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PolicyFile => Path.Combine(_dir, "policies.json");

    private string WorkloadFile => Path.Combine(_dir, "workloads.json");

    private WorkloadRegistry Registry() => new("example.org", "10.200.0.0/16", TimeProvider.System, "/proc", WorkloadFile);

    [Fact]
    public void Policies_and_their_version_survive_a_reload_and_the_version_never_goes_back()
    {
        var store = new PolicyStore(TimeProvider.System, PolicyFile);
        Assert.True(store.Apply(PolicyTexts.TwoPolicies, out _, out _));
        Assert.Equal(2L, store.Delete("shop", "no-admin"));

        var reloaded = new PolicyStore(TimeProvider.System, PolicyFile);
        PolicySet set = reloaded.Snapshot();
        Assert.Equal(2, set.Version);
        Assert.Equal(["allow-web"], set.Policies.Select(p => p.Name));
        Assert.Equal(store.Snapshot().Policies.Single().Yaml, set.Policies.Single().Yaml);

        Assert.True(reloaded.Apply(PolicyTexts.TwoPolicies, out PolicyApplyResult? result, out _));
        Assert.Equal(3, result!.Version);
        Assert.Equal(3, new PolicyStore(TimeProvider.System, PolicyFile).Version);
    }

    [Fact]
    public void A_change_that_cannot_be_stored_is_refused_and_changes_nothing()
    {
        var store = new PolicyStore(TimeProvider.System, Path.Combine(_dir, "gone", "policies.json"));
        Assert.ThrowsAny<IOException>(() => store.Apply(PolicyTexts.TwoPolicies, out _, out _));
        Assert.Equal(0, store.Version);
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public async Task Each_start_has_its_own_epoch_and_a_watch_from_another_epoch_is_answered_at_once()
    {
        var first = new PolicyStore(TimeProvider.System, PolicyFile);
        Assert.True(first.Apply(PolicyTexts.TwoPolicies, out _, out _));
        var second = new PolicyStore(TimeProvider.System, PolicyFile);
        Assert.NotEqual(first.Epoch, second.Epoch);
        Assert.Equal(second.Epoch, second.Snapshot().Epoch);

        // Same version, earlier epoch: the watcher learns of the restart without waiting.
        Task<PolicySet> other = second.WatchAsync(first.Epoch, 1, TimeSpan.FromHours(1), CancellationToken.None);
        Assert.True(other.IsCompleted);
        Assert.Equal(second.Epoch, (await other).Epoch);

        // Same version, same epoch: it waits for a change.
        using var cancel = new CancellationTokenSource();
        Task<PolicySet> same = second.WatchAsync(second.Epoch, 1, TimeSpan.FromHours(1), cancel.Token);
        Assert.False(same.IsCompleted);
        Assert.Equal(1, second.Waiters);
        Assert.Equal(2L, second.Delete("shop", "no-admin"));
        Assert.Equal(2, (await same).Version);
    }

    [Theory]
    [InlineData("7", null, 7L)]
    [InlineData("-1", null, -1L)]
    [InlineData("abc123:42", "abc123", 42L)]
    public void Watch_positions_parse(string text, string? epoch, long version)
    {
        Assert.True(Beemesh.Agent.State.ChangeFeed.TryParsePosition(text, out string? parsedEpoch, out long parsedVersion));
        Assert.Equal(epoch, parsedEpoch);
        Assert.Equal(version, parsedVersion);
    }

    [Fact]
    public async Task A_caller_learns_that_a_watch_is_held_from_the_feed_not_by_polling()
    {
        // The clock is stopped, so the watch's timeout never fires: only the change ends it.
        var feed = new Beemesh.Agent.State.ChangeFeed(new Microsoft.Extensions.Time.Testing.FakeTimeProvider());
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30)); // keeps a broken build from hanging; measures nothing
        Task held = feed.WaitForWaitersAsync(1, patience.Token);
        Assert.False(held.IsCompleted);

        Task watch = feed.WaitAsync(epoch: null, since: 0, TimeSpan.FromHours(1), CancellationToken.None);
        await held;
        Assert.Equal(1, feed.Waiters);
        Assert.False(watch.IsCompleted);

        Beemesh.Agent.State.ChangeFeed.Wake(feed.Bump().Signal);
        await watch.WaitAsync(patience.Token);
        Assert.Equal(0, feed.Waiters);
    }

    [Theory]
    [InlineData("")]
    [InlineData(":5")]
    [InlineData("abc:")]
    [InlineData("abc:x")]
    public void Bad_watch_positions_are_refused(string text)
    {
        Assert.False(Beemesh.Agent.State.ChangeFeed.TryParsePosition(text, out _, out _));
    }

    [Fact]
    public void Registrations_of_live_processes_survive_a_reload_with_their_ids_and_addresses()
    {
        var registry = Registry();
        WorkloadRecord api = registry.Add(AgentFixture.Workload("api"))!;
        WorkloadRecord web = registry.Add(AgentFixture.Workload("web"))!;
        Assert.NotNull(registry.Remove(web.Id));

        var reloaded = Registry();
        WorkloadRecord restored = Assert.Single(reloaded.List());
        Assert.Equal(api.Id, restored.Id);
        Assert.Equal(api.MeshAddress, restored.MeshAddress);
        Assert.Equal(api.SpiffeId, restored.SpiffeId);
        Assert.Equal(api.Id, reloaded.Resolve("api.default")!.Id);

        // Ids are never reused and each name keeps its address.
        WorkloadRecord webAgain = reloaded.Add(AgentFixture.Workload("web"))!;
        Assert.NotEqual(web.Id, webAgain.Id);
        Assert.NotEqual(api.Id, webAgain.Id);
        Assert.Equal(web.MeshAddress, webAgain.MeshAddress);
    }

    [Fact]
    public void A_registration_whose_process_is_gone_is_dropped_on_load_and_by_the_reaper()
    {
        using Process child = Process.Start(new ProcessStartInfo("sleep", "600"))!;
        var registry = Registry();
        WorkloadRecord dead, live;
        try
        {
            dead = registry.Add(AgentFixture.Workload("dead", pid: child.Id))!;
            live = registry.Add(AgentFixture.Workload("live"))!;
            Assert.Empty(registry.Reap());
        }
        finally
        {
            // Ended here whatever happened above, so a failure leaves no sleep behind.
            child.Kill();
            child.WaitForExit();
        }

        long before = registry.Version;

        var reloaded = Registry();
        Assert.Equal(1, reloaded.DroppedOnLoad);
        Assert.Equal([live.Id], reloaded.List().Select(r => r.Id));
        Assert.Null(reloaded.Resolve("dead.default"));

        WorkloadRecord reaped = Assert.Single(registry.Reap());
        Assert.Equal(dead.Id, reaped.Id);
        Assert.Null(registry.Resolve("dead.default"));
        Assert.True(registry.Version > before);
        Assert.Empty(registry.Reap());
    }

    [Fact]
    public void A_registration_whose_pid_now_names_another_process_is_dropped_on_load()
    {
        var registry = Registry();
        registry.Add(AgentFixture.Workload("api"));
        string text = File.ReadAllText(WorkloadFile);
        ulong startTime = (ulong)System.Text.Json.Nodes.JsonNode.Parse(text)!["workloads"]![0]!["startTime"]!;
        File.WriteAllText(WorkloadFile, text.Replace($"\"startTime\": {startTime}", $"\"startTime\": {startTime + 1}", StringComparison.Ordinal));

        var reloaded = Registry();
        Assert.Empty(reloaded.List());
        Assert.Equal(1, reloaded.DroppedOnLoad);
    }

    [Fact]
    public async Task The_workload_watch_wakes_on_a_registration_and_answers_another_epoch_at_once()
    {
        var registry = Registry();
        WorkloadSet start = registry.Snapshot();
        Task<WorkloadSet> waiting = registry.WatchAsync(start.Epoch, start.Version, TimeSpan.FromHours(1), CancellationToken.None);
        Assert.False(waiting.IsCompleted);
        WorkloadRecord api = registry.Add(AgentFixture.Workload("api"))!;
        WorkloadSet changed = await waiting;
        Assert.Equal(api.Id, Assert.Single(changed.Workloads).Id);
        Assert.True(changed.Version > start.Version);

        Task<WorkloadSet> other = registry.WatchAsync("another-run", changed.Version, TimeSpan.FromHours(1), CancellationToken.None);
        Assert.True(other.IsCompleted);
    }
}
