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
    private readonly IDisposable? _served;

    private EventualReplica(ReplicaSlot slot, ReplicaLink link, EventualReplicator replicator, IDisposable? served)
    {
        _slot = slot;
        _link = link;
        _served = served;
        Replicator = replicator;
    }

    /// <summary>TLS peers the replica link refused (not this workload's SPIFFE ID).</summary>
    public long RefusedPeers => _link.RefusedPeers;

    /// <summary>The replicator.</summary>
    public EventualReplicator Replicator { get; }

    /// <summary>Where this replica takes its peers' requests.</summary>
    public System.Net.IPEndPoint EndPoint => _link.EndPoint;

    /// <summary>The directory the replicas of <paramref name="store"/> meet in, under the workload's state directory.</summary>
    /// <remarks>"+eventual" cannot be a store name, so it never collides with a strong store's directory.</remarks>
    public static string DirectoryOf(StrongStoreContext context, string store) =>
        Path.Combine((context ?? throw new ArgumentNullException(nameof(context))).Directory, "+eventual", store);

    /// <summary>
    /// Starts replicating <paramref name="store"/> with the workload's other replicas of it: those on
    /// this node, and with <see cref="StrongStoreContext.Mesh"/>, one on each other node that runs the
    /// workload, through that node's tunnel port.
    /// </summary>
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
        IDisposable? served = null;
        try
        {
            ILogger logger = loggerFactory.CreateLogger("beemesh.state.eventual");
            IReplicaDiscovery discovery = new StateDirectoryDiscovery(directory, slot.Path);
            MeshReplicaDiscovery? mesh = context.Mesh is null ? null : new MeshReplicaDiscovery(discovery, context.Mesh);
            link = new ReplicaLink($"eventual store {store.Name}", context.Source, context.Identity, options.MaxFrameBytes, logger, counters.CountRefusedFrame, context.ListenAddress)
            {
                Protocol = mesh is null ? null : ReplicaLink.ProtocolFor("eventual", store.Name),
                TunnelServerName = mesh is null ? null : mesh.ServerNameOf,
            };
            var replicator = new EventualReplicator(store, mesh ?? discovery, link, options, counters, logger, time);
            link.Start(replicator.HandleAsync);
            if (context.Mesh is not null)
            {
                served = context.Mesh.Serve(link.Protocol!.Value, link.ServeTunnelledAsync);
            }

            slot.WriteEndpoints(new Dictionary<string, System.Net.IPEndPoint> { [StateDirectoryDiscovery.EndPointName] = link.EndPoint });
            replicator.Start();
            logger.LogInformation("eventual store {Store}: replica {EndPoint} in {Directory}", store.Name, link.EndPoint, directory);
            return new EventualReplica(slot, link, replicator, served);
        }
        catch
        {
            served?.Dispose();
            link?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            slot.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _served?.Dispose();
        await Replicator.DisposeAsync().ConfigureAwait(false);
        await _link.DisposeAsync().ConfigureAwait(false);
        _slot.Delete();
        _slot.Dispose();
    }
}
