using System.Diagnostics;
using System.Globalization;
using Beemesh.Spiffe.WorkloadApi;
using Grpc.Core;

namespace Beemesh.Agent.Tests.Security;

/// <summary>
/// A Workload API connection opened by a short-lived process and kept after it exits must not get
/// the identity of the process that later receives the same pid.
/// </summary>
public sealed class PidReuseTests
{
    private const string LastPidFile = "/proc/sys/kernel/ns_last_pid";

    [SkippableFact]
    public async Task KeptConnectionOfAGoneProcessGetsNoSvidAfterItsPidIsReused()
    {
        Skip.IfNot(WorkloadRelay.Available, "python3 is not installed (/usr/bin/python3)");
        Skip.IfNot(CanSetLastPid(), $"{LastPidFile} is not writable here (needs CAP_SYS_ADMIN in this pid namespace)");
        await using var agent = await AgentFixture.StartAsync();
        using var relay = await WorkloadRelay.StartHandoffAsync(agent.Host.WorkloadApiSocketPath, Path.Combine(agent.Root, "kept.sock"));
        int gonePid = relay.ReportedPid;
        Assert.False(Directory.Exists($"/proc/{gonePid}"), "the connecting process should have exited and been reaped");

        // The victim: a registered workload that is forced to receive the gone process's pid.
        Process? victim = null;
        for (int attempt = 0; attempt < 500 && victim is null; attempt++)
        {
            await File.WriteAllTextAsync(LastPidFile, (gonePid - 1).ToString(CultureInfo.InvariantCulture));
            Process child = AgentFixture.StartChild();
            if (child.Id == gonePid)
            {
                victim = child;
            }
            else
            {
                child.Kill();
                await child.WaitForExitAsync();
            }
        }

        Skip.If(victim is null, $"could not get pid {gonePid} reused (other processes took it first)");
        var record = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("victim", "prod", victim!.Id));
        Assert.Equal("spiffe://example.org/ns/prod/sa/victim", record.SpiffeId);

        using var attacker = new WorkloadApiClient(relay.SocketPath);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var refused = await Assert.ThrowsAsync<RpcException>(() => attacker.FetchX509ContextAsync(cancel.Token));
        // PermissionDenied: the call found the connection's process gone. Unavailable: on a loaded
        // machine the agent accepted the connection only after its process had exited, and closed it
        // at once. Either way no SVID.
        Assert.True(refused.StatusCode is StatusCode.PermissionDenied or StatusCode.Unavailable, refused.ToString());
        victim.Kill();
    }

    private static bool CanSetLastPid()
    {
        try
        {
            File.WriteAllText(LastPidFile, File.ReadAllText(LastPidFile).Trim());
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
