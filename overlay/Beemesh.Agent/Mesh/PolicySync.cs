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
/// A pass runs as soon as either side changes: the local store (<see cref="PolicyStore.Changed"/>) or
/// a policy record from another node stored by the overlay, so a set applied on one node is published
/// and in force on the others without waiting for a timer. Passes coalesce and rest as long as they
/// took (<see cref="PassLoop"/>); a pass every <see cref="SweepInterval"/> retries what failed (a set
/// the state file could not store, a publish the overlay refused).
/// </summary>
internal sealed class PolicySync : IAsyncDisposable
{
    /// <summary>Record key of the mesh's policy set.</summary>
    public const string Key = "policies";

    /// <summary>Period of the pass that retries what failed (1 s); changes run a pass at once.</summary>
    public static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(1);

    private readonly OverlayHost _overlay;
    private readonly PolicyStore _policies;
    private readonly ILogger _logger;
    private readonly PassLoop _passes;
    private string _synced;
    private RecordVersion? _applied;

    /// <summary>Starts the loop (its first pass at once), its sweep on <paramref name="time"/>.</summary>
    public PolicySync(OverlayHost overlay, PolicyStore policies, ILogger logger, TimeProvider time)
    {
        _overlay = overlay;
        _policies = policies;
        _logger = logger;
        _synced = policies.Snapshot().ToYaml();
        _passes = new PassLoop(PassAsync, time, SweepInterval);
        _policies.Changed += _passes.Request;
        _overlay.RecordStored += OnRecordStored;
    }

    /// <summary>Version of the mesh policy set this node holds (HLC@origin), or null before any.</summary>
    public string? MeshVersion => _applied?.ToString();

    // On the overlay's loop: a policy set from another node. This node's own come from its passes.
    private void OnRecordStored(OverlayRecord record)
    {
        if (record.Kind == RecordKind.Policy && record.Origin != _overlay.Self.Id)
        {
            _passes.Request();
        }
    }

    private async Task PassAsync()
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

    private async Task SyncAsync()
    {
        OverlayRecord? mesh = await _overlay.QueryAsync(node => node.Store.Get(new RecordSlot(RecordKind.Policy, Key))).ConfigureAwait(false);
        if (mesh is not null && !mesh.Tombstone && (_applied is null || mesh.Version > _applied.Value))
        {
            string yaml = Encoding.UTF8.GetString(mesh.Payload.Span);
            if (yaml != _policies.Snapshot().ToYaml())
            {
                // A set the state file cannot store throws here and is tried again by a later pass.
                bool loaded = _policies.ReplaceAll(yaml, out IReadOnlyList<PolicyError> errors);
                _applied = mesh.Version;
                if (!loaded)
                {
                    _overlay.CountExternal("policy_sets_refused");
                    OverlayHostLog.LinkRefused(_logger, "policies", $"policy set {mesh.Version} does not load: {(errors.Count > 0 ? errors[0].ToString() : "?")}");
                    return;
                }

                _overlay.CountExternal("policy_sets_applied");
            }

            _applied = mesh.Version;

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
        _policies.Changed -= _passes.Request;
        _overlay.RecordStored -= OnRecordStored;
        await _passes.DisposeAsync().ConfigureAwait(false);
    }
}
