using Beemesh.State.Eventual;

namespace Beemesh.Sidecar.State;

/// <summary>
/// The state stores one workload may use, by Dapr store name, and the app id its keys are scoped
/// to (<c>appid||key</c>). The app id comes from the sidecar (the workload's mesh name), never
/// from a request, so a workload reaches only its own app's keys.
/// </summary>
public sealed class StateStoreSet
{
    private readonly Dictionary<string, IStateStore> _stores;

    /// <summary>Creates the set for <paramref name="appId"/> of eventual stores.</summary>
    public StateStoreSet(string appId, IEnumerable<EventualStore> stores)
        : this(appId, (stores ?? throw new ArgumentNullException(nameof(stores))).Select(static s => (IStateStore)new EventualStateStore(s)))
    {
    }

    /// <summary>Creates the set for <paramref name="appId"/>.</summary>
    public StateStoreSet(string appId, IEnumerable<IStateStore> stores)
    {
        ArgumentException.ThrowIfNullOrEmpty(appId);
        ArgumentNullException.ThrowIfNull(stores);
        AppId = appId;
        _stores = stores.ToDictionary(static s => s.Name, StringComparer.Ordinal);
    }

    /// <summary>The app id keys are scoped to.</summary>
    public string AppId { get; }

    /// <summary>The store names, for the start-up log.</summary>
    public IReadOnlyCollection<string> Names => _stores.Keys;

    /// <summary>The store named <paramref name="name"/>, or null.</summary>
    public IStateStore? Find(string? name) =>
        name is not null && _stores.TryGetValue(name, out IStateStore? store) ? store : null;
}
