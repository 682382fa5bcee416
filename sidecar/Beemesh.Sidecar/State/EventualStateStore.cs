using Beemesh.Sidecar.State.Eventual;
using Beemesh.State.Api;
using Beemesh.State.Eventual;

namespace Beemesh.Sidecar.State;

/// <summary>
/// An <see cref="EventualStore"/> replica behind the state API: every call completes at once; with a
/// <see cref="EventualReplicator"/>, applied writes are handed to it to push to the other replicas.
/// </summary>
public sealed class EventualStateStore(EventualStore store, EventualReplicator? replicator = null) : IStateStore
{
    /// <summary>The replica.</summary>
    public EventualStore Store { get; } = store ?? throw new ArgumentNullException(nameof(store));

    /// <summary>What replicates the store, or null for a store local to this sidecar.</summary>
    public EventualReplicator? Replicator { get; } = replicator;

    /// <inheritdoc />
    public string Name => Store.Name;

    /// <inheritdoc />
    public long Bytes => Store.Bytes;

    /// <inheritdoc />
    public Task<StateValue?[]> GetAsync(IReadOnlyList<string> scopedKeys, CancellationToken cancellationToken) =>
        Task.FromResult(scopedKeys.Select(Store.Get).ToArray());

    /// <inheritdoc />
    public Task<StateWriteResult> WriteAsync(IReadOnlyList<StateOperation> operations, CancellationToken cancellationToken)
    {
        if (Replicator is null)
        {
            return Task.FromResult(Store.Apply(operations));
        }

        var written = new List<StateEntry>(operations.Count);
        StateWriteResult result = Store.Apply(operations, written);
        Replicator.Written(written);
        return Task.FromResult(result);
    }
}
