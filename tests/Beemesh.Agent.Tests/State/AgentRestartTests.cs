using System.Diagnostics;
using System.Net;
using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;
using Beemesh.Agent.Tests.Policies;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Agent.Tests.State;

public sealed class AgentRestartTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("bm-ar-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private AgentOptions Options(TimeProvider? time = null) => new()
    {
        StateDirectory = Path.Combine(_root, "s"),
        TimeProvider = time ?? TimeProvider.System,
    };

    [Fact]
    public async Task Policies_versions_and_live_registrations_survive_a_restart_in_the_same_state_directory()
    {
        WorkloadRecord api;
        PolicySet before;
        await using (AgentHost first = await AgentHost.StartAsync(Options()))
        {
            using var client = new AgentClient(first.Options.StateDirectory);
            await client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies);
            api = await client.RegisterWorkloadAsync(AgentFixture.Workload("api"));
            before = await client.ListPoliciesAsync();
        }

        Assert.True(File.Exists(Path.Combine(_root, "s", "state", AgentHost.PoliciesFileName)));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.Combine(_root, "s", "state")));
        await using AgentHost second = await AgentHost.StartAsync(Options());
        Assert.Equal("state: 2 policies (version 1), 1 workloads restored, 0 dropped (process gone)", second.RestoredState);
        using var again = new AgentClient(second.Options.StateDirectory);
        PolicySet after = await again.ListPoliciesAsync();
        Assert.Equal(before.Version, after.Version);
        Assert.Equal(before.Policies.Select(p => p.Yaml), after.Policies.Select(p => p.Yaml));
        Assert.NotEqual(before.Epoch, after.Epoch);

        ServiceRecord? resolved = await again.ResolveAsync("api.default");
        Assert.NotNull(resolved);
        Assert.Equal(api.Id, Assert.Single(resolved.Replicas).Id);
        Assert.Equal(api.MeshAddress, resolved.MeshAddress);

        // The version continues from where the first run left it.
        Assert.Equal(before.Version + 1, (await again.ApplyPoliciesAsync(PolicyTexts.TwoPolicies)).Version);
    }

    [Fact]
    public async Task A_corrupt_state_file_refuses_the_start_with_one_line_naming_it()
    {
        string state = Path.Combine(_root, "s", "state");
        Directory.CreateDirectory(state);
        string file = Path.Combine(state, AgentHost.PoliciesFileName);
        await File.WriteAllTextAsync(file, "{\"format\":1,\"version\":4,\"policies\":[{\"namesp");

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => AgentHost.StartAsync(Options()));
        Assert.Contains(file, refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', refused.Message);
        Assert.False(File.Exists(Path.Combine(_root, "s", AgentHost.AdminSocketName)));
        Assert.Equal("{\"format\":1,\"version\":4,\"policies\":[{\"namesp", await File.ReadAllTextAsync(file));
    }

    [Fact]
    public async Task The_reaper_drops_a_workload_whose_process_is_gone_at_its_next_pass()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using AgentHost host = await AgentHost.StartAsync(Options(time));
        using var client = new AgentClient(host.Options.StateDirectory);
        using Process child = Process.Start(new ProcessStartInfo("sleep", "600"))!;
        WorkloadRecord gone;
        try
        {
            gone = await client.RegisterWorkloadAsync(AgentFixture.Workload("gone", pid: child.Id));
            await client.RegisterWorkloadAsync(AgentFixture.Workload("stays"));

            time.Advance(host.Options.ReapInterval);
            Assert.NotNull(await client.ResolveAsync("gone.default"));
        }
        finally
        {
            // Ended here whatever happened above, so a failure leaves no sleep behind.
            child.Kill();
            await child.WaitForExitAsync();
        }

        Assert.NotNull(await client.ResolveAsync("gone.default"));
        time.Advance(host.Options.ReapInterval);

        Assert.Null(await client.ResolveAsync("gone.default"));
        Assert.NotNull(await client.ResolveAsync("stays.default"));
        Assert.DoesNotContain(await client.ListWorkloadsAsync(), w => w.Id == gone.Id);
        Assert.Equal(1, host.Reaper.Reaped);
    }

    [Fact]
    public async Task The_workload_watch_answers_over_the_admin_api_and_refuses_a_bad_position()
    {
        await using AgentHost host = await AgentHost.StartAsync(Options());
        using var client = new AgentClient(host.Options.StateDirectory);
        WorkloadSet empty = await client.WatchWorkloadsAsync(null, -1, TimeSpan.Zero);
        Assert.Empty(empty.Workloads);
        Task<WorkloadSet> waiting = client.WatchWorkloadsAsync(empty.Epoch, empty.Version, TimeSpan.FromSeconds(30));
        WorkloadRecord api = await client.RegisterWorkloadAsync(AgentFixture.Workload("api"));
        WorkloadSet changed = await waiting;
        Assert.Equal(api.Id, Assert.Single(changed.Workloads).Id);

        using HttpResponseMessage bad = await client.SendRawAsync(new HttpRequestMessage(HttpMethod.Get, "v1/workloads/watch?since=x:y"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }
}
