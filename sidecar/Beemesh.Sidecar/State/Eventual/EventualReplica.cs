using Beemesh.Sidecar.State.Replicas;
using Beemesh.Sidecar.State.Strong;
using Beemesh.Sidecar.Telemetry;
using Beemesh.State.Eventual;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.State.Eventual;

/// <summary>
/// One running replica of a workload's eventual store: its slot in the store's directory on this
/// node (<c>STATE/state/NAMESPACE/NAME/+eventual/STORE/slot-*</c>, where the other replicas find
/// its endpoint), its mutual-TLS <see cref="ReplicaLink"/> and its <see cref="EventualReplicator"/>.
/// </summary>
public sealed class EventualReplica : IAsyncDisposable
{
    private readonly ReplicaSlot _slot;
    private readonly ReplicaLink _link;

    private EventualReplica(ReplicaSlot slot, ReplicaLink link, EventualReplicator replicator)
    {
        _slot = slot;
        _link = link;
        Replicator = replicator;
    }

    /// <summary>The replicator.</summary>
    public EventualReplicator Replicator { get; }

    /// <summary>Where this replica takes its peers' requests.</summary>
    public System.Net.IPEndPoint EndPoint => _link.EndPoint;

    /// <summary>The directory the replicas of <paramref name="store"/> meet in, under the workload's state directory.</summary>
    /// <remarks>"+eventual" cannot be a store name, so it never collides with a strong store's directory.</remarks>
    public static string DirectoryOf(StrongStoreContext context, string store) =>
        Path.Combine((context ?? throw new ArgumentNullException(nameof(context))).Directory, "+eventual", store);

    /// <summary>Starts replicating <paramref name="store"/> with the workload's other replicas of it on this node.</summary>
    public static EventualReplica Start(
        EventualStore store, StrongStoreContext context, EventualReplicationOptions options, EventualStateCounters counters,
        ILoggerFactory loggerFactory, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        string directory = DirectoryOf(context, store.Name);
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        (ReplicaSlot slot, _) = ReplicaSlot.Claim(directory, StateDirectoryDiscovery.EndPointName, reclaimEndPoint: null);
        ReplicaLink? link = null;
        try
        {
            ILogger logger = loggerFactory.CreateLogger("beemesh.state.eventual");
            link = new ReplicaLink($"eventual store {store.Name}", context.Source, context.Identity, options.MaxFrameBytes, logger, counters.CountRefusedFrame);
            var replicator = new EventualReplicator(store, new StateDirectoryDiscovery(directory, slot.Path), link, options, counters, logger, time);
            link.Start(replicator.HandleAsync);
            slot.WriteEndpoints(new Dictionary<string, System.Net.IPEndPoint> { [StateDirectoryDiscovery.EndPointName] = link.EndPoint });
            replicator.Start();
            logger.LogInformation("eventual store {Store}: replica {EndPoint} in {Directory}", store.Name, link.EndPoint, directory);
            return new EventualReplica(slot, link, replicator);
        }
        catch
        {
            link?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            slot.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await Replicator.DisposeAsync().ConfigureAwait(false);
        await _link.DisposeAsync().ConfigureAwait(false);
        _slot.Delete();
        _slot.Dispose();
    }
}
