using Beemesh.State.Api;
using Beemesh.State.Eventual;

namespace Beemesh.Sidecar.State;

/// <summary>An <see cref="EventualStore"/> replica behind the state API: every call completes at once.</summary>
public sealed class EventualStateStore(EventualStore store) : IStateStore
{
    /// <summary>The replica.</summary>
    public EventualStore Store { get; } = store ?? throw new ArgumentNullException(nameof(store));

    /// <inheritdoc />
    public string Name => Store.Name;

    /// <inheritdoc />
    public long Bytes => Store.Bytes;

    /// <inheritdoc />
    public Task<StateValue?[]> GetAsync(IReadOnlyList<string> scopedKeys, CancellationToken cancellationToken) =>
        Task.FromResult(scopedKeys.Select(Store.Get).ToArray());

    /// <inheritdoc />
    public Task<StateWriteResult> WriteAsync(IReadOnlyList<StateOperation> operations, CancellationToken cancellationToken) =>
        Task.FromResult(Store.Apply(operations));
}
