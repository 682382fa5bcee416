using Beemesh.Sidecar.State.Eventual;
using Beemesh.State.Api;
using Beemesh.State.Eventual;

namespace Beemesh.Sidecar.State;

/// <summary>
/// An <see cref="EventualStore"/> replica behind the state API: every call completes at once; with a
/// <see cref="EventualReplicator"/>, applied writes are handed to it to push to the other replicas.
/// </summary>
/// <remarks>
/// With a <see cref="EventualJournal"/>, applied writes are in the journal before the call completes;
/// a journal that refuses them fails the call with <see cref="EventualJournalException"/> (the write
/// is applied in memory already and may still be read and replicated).
/// </remarks>
public sealed class EventualStateStore(EventualStore store, EventualReplicator? replicator = null, EventualJournal? journal = null) : IStateStore
{
    /// <summary>Where writes are kept on disk, or null.</summary>
    public EventualJournal? Journal { get; } = journal;

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
        if (Replicator is null && Journal is null)
        {
            return Task.FromResult(Store.Apply(operations));
        }

        var written = new List<StateEntry>(operations.Count);
        StateWriteResult result = Store.Apply(operations, written);
        Journal?.Append(written);
        Replicator?.Written(written);
        return Task.FromResult(result);
    }
}
