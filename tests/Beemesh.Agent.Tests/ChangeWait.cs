using Beemesh.Agent.Client;
using Beemesh.Agent.Mesh;
using Beemesh.Agent.Policies;
using Beemesh.Agent.Workloads;

namespace Beemesh.Agent.Tests;

/// <summary>
/// Waits for a condition on an agent's workloads (local and remote routes) or policies by following
/// the same change feed the sidecars' watches follow, on its overlay (views, records, counters, revoked
/// set) or its node certificate renewals by following their change signals: the condition is checked
/// again at every change, never on a timer. The patience only keeps a broken build from hanging; it
/// measures nothing.
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

    /// <summary>Returns once <paramref name="done"/> holds, checked at each change of <paramref name="overlay"/>.</summary>
    public static Task UntilAsync(OverlayHost overlay, Func<bool> done) => UntilAsync(overlay, () => Task.FromResult(done()));

    /// <summary>
    /// Returns once <paramref name="done"/> (e.g. a members report through the admin API) holds, checked
    /// at each change of <paramref name="overlay"/>.
    /// </summary>
    public static async Task UntilAsync(OverlayHost overlay, Func<Task<bool>> done)
    {
        using var patience = new CancellationTokenSource(Patience);
        long seen = overlay.ChangeVersion; // read before the check, so no change between is missed
        while (!await done())
        {
            await overlay.WaitForChangeAsync(seen, Patience, patience.Token);
            patience.Token.ThrowIfCancellationRequested();
            seen = overlay.ChangeVersion;
        }
    }

    /// <summary>Returns once <paramref name="done"/> holds, checked at each change of <paramref name="renewal"/>.</summary>
    public static async Task UntilAsync(NodeCertificateRenewal renewal, Func<bool> done)
    {
        using var patience = new CancellationTokenSource(Patience);
        long seen = renewal.Version;
        while (!done())
        {
            await renewal.WaitForChangeAsync(seen, Patience, patience.Token);
            patience.Token.ThrowIfCancellationRequested();
            seen = renewal.Version;
        }
    }

    /// <summary>Returns once <paramref name="done"/> holds, checked at each change of any of <paramref name="overlays"/>.</summary>
    public static async Task UntilAsync(IReadOnlyList<OverlayHost> overlays, Func<bool> done)
    {
        using var patience = new CancellationTokenSource(Patience);
        long[] seen = [.. overlays.Select(o => o.ChangeVersion)];
        while (!done())
        {
            using var round = CancellationTokenSource.CreateLinkedTokenSource(patience.Token);
            await Task.WhenAny(overlays.Select((o, i) => o.WaitForChangeAsync(seen[i], Patience, round.Token)));
            await round.CancelAsync();
            patience.Token.ThrowIfCancellationRequested();
            seen = [.. overlays.Select(o => o.ChangeVersion)];
        }
    }

    /// <summary>Returns once <paramref name="done"/> holds, checked after each pass of <paramref name="keys"/> (the JWT keys of other nodes).</summary>
    public static async Task UntilAsync(JwtKeySync keys, Func<bool> done)
    {
        using var patience = new CancellationTokenSource(Patience);
        long seen = keys.Passes;
        while (!done())
        {
            await keys.WaitForPassAsync(seen, Patience, patience.Token);
            patience.Token.ThrowIfCancellationRequested();
            seen = keys.Passes;
        }
    }
}
