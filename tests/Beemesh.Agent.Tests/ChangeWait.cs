using Beemesh.Agent.Client;
using Beemesh.Agent.Policies;
using Beemesh.Agent.Workloads;

namespace Beemesh.Agent.Tests;

/// <summary>
/// Waits for a condition on an agent's workloads (local and remote routes) or policies by following
/// the same change feed the sidecars' watches follow: the condition is checked again at every change,
/// never on a timer. The patience only keeps a broken build from hanging; it measures nothing.
/// </summary>
internal static class ChangeWait
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>Returns once <paramref name="done"/> holds, checked at each change of <paramref name="registry"/>.</summary>
    public static async Task UntilAsync(WorkloadRegistry registry, Func<bool> done)
    {
        using var patience = new CancellationTokenSource(Patience);
        WorkloadSet seen = registry.Snapshot(); // taken before the check, so no change between is missed
        while (!done())
        {
            seen = await registry.WatchAsync(seen.Epoch, seen.Version, Patience, patience.Token);
        }
    }

    /// <summary>Returns once <paramref name="done"/> holds, checked at each change of <paramref name="policies"/>.</summary>
    public static async Task UntilAsync(PolicyStore policies, Func<bool> done)
    {
        using var patience = new CancellationTokenSource(Patience);
        PolicySet seen = policies.Snapshot();
        while (!done())
        {
            seen = await policies.WatchAsync(seen.Epoch, seen.Version, Patience, patience.Token);
        }
    }
}
