using System.Text;
using Beemesh.Agent.Client;
using Beemesh.Agent.Policies;
using Beemesh.Authorization;
using Beemesh.Overlay.Records;
using Microsoft.Extensions.Logging;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// One policy set for the whole mesh: the policy record (key <see cref="Key"/>) holds the set as
/// YAML; the newest version (hybrid logical clock, then origin) wins on every node. A change made on
/// this node (apply, delete) is published; a newer set from another node replaces this node's set,
/// which wakes the sidecars' policy watches as a local change does. A set that does not load is
/// refused and counted. Policies restored from the state directory are published only once changed.
/// </summary>
internal sealed class PolicySync : IAsyncDisposable
{
    /// <summary>Record key of the mesh's policy set.</summary>
    public const string Key = "policies";

    /// <summary>How often the local policy set and the mesh's are compared (250 ms).</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    private readonly OverlayHost _overlay;
    private readonly PolicyStore _policies;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private string _synced;
    private RecordVersion? _applied;

    public PolicySync(OverlayHost overlay, PolicyStore policies, ILogger logger)
    {
        _overlay = overlay;
        _policies = policies;
        _logger = logger;
        _synced = policies.Snapshot().ToYaml();
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Version of the mesh policy set this node holds (HLC@origin), or null before any.</summary>
    public string? MeshVersion => _applied?.ToString();

    private async Task RunAsync()
    {
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                try
                {
                    await SyncAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or ArgumentException or InvalidOperationException)
                {
                    OverlayHostLog.LinkRefused(_logger, "policies", e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task SyncAsync()
    {
        OverlayRecord? mesh = await _overlay.QueryAsync(node => node.Store.Get(new RecordSlot(RecordKind.Policy, Key))).ConfigureAwait(false);
        if (mesh is not null && !mesh.Tombstone && (_applied is null || mesh.Version > _applied.Value))
        {
            string yaml = Encoding.UTF8.GetString(mesh.Payload.Span);
            _applied = mesh.Version;
            if (yaml != _policies.Snapshot().ToYaml())
            {
                if (!_policies.ReplaceAll(yaml, out IReadOnlyList<PolicyError> errors))
                {
                    _overlay.CountExternal("policy_sets_refused");
                    OverlayHostLog.LinkRefused(_logger, "policies", $"policy set {mesh.Version} does not load: {(errors.Count > 0 ? errors[0].ToString() : "?")}");
                    return;
                }

                _overlay.CountExternal("policy_sets_applied");
            }

            // What the store holds now (its own rendering of the set), so the set is not published back.
            _synced = _policies.Snapshot().ToYaml();
            return;
        }

        string local = _policies.Snapshot().ToYaml();
        if (local != _synced)
        {
            OverlayRecord published = await _overlay.PublishAsync(new RecordContent(RecordKind.Policy, Key, Encoding.UTF8.GetBytes(local))).ConfigureAwait(false);
            _applied = published.Version;
            _synced = local;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
