using Beemesh.Sidecar.State.Replicas;
using Beemesh.Sidecar.State.Strong;
using Beemesh.Sidecar.Telemetry;
using Beemesh.State.Eventual;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.State.Eventual;

/// <summary>
/// One running replica of a workload's eventual store: its slot in the store's directory on this
/// node (<c>STATE/state/NAMESPACE/NAME/+eventual/STORE/slot-*</c>, where the other replicas find
/// its endpoint and where its <see cref="EventualJournal"/> keeps its data), its mutual-TLS
/// <see cref="ReplicaLink"/> and its <see cref="EventualReplicator"/>.
/// </summary>
/// <remarks>
/// <para>A replica starting takes over the data of every slot whose replica is gone (stopped last, or
/// killed): it loads their journals with its own slot's, writes them to its own snapshot, and deletes
/// those slots. A gone replica's data older than the tombstone grace period is not taken when another
/// replica runs (the running ones are newer, and may have forgotten a delete that old data would undo).</para>
/// <para>A replica stopping while another runs hands its data over (exchanges until a peer's digest
/// equals its own) and deletes its slot; the last one to stop, or one whose hand-over fails, keeps its
/// slot for the next replica to start. Starts and stops of one store take the store directory's
/// <c>join.lock</c> in turn, so two replicas stopping at once never both count on the other.</para>
/// </remarks>
public sealed class EventualReplica : IAsyncDisposable
{
    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(30);
    private readonly string _directory;
    private readonly ReplicaSlot _slot;
    private readonly ReplicaLink _link;
    private readonly IReplicaDiscovery _discovery;
    private readonly IDisposable? _served;
    private readonly ILogger _logger;

    private EventualReplica(
        string directory, ReplicaSlot slot, ReplicaLink link, IReplicaDiscovery discovery, EventualReplicator replicator, EventualJournal journal,
        IDisposable? served, ILogger logger)
    {
        _directory = directory;
        _slot = slot;
        _link = link;
        _discovery = discovery;
        _served = served;
        _logger = logger;
        Replicator = replicator;
        Journal = journal;
    }

    /// <summary>TLS peers the replica link refused (not this workload's SPIFFE ID).</summary>
    public long RefusedPeers => _link.RefusedPeers;

    /// <summary>The replicator.</summary>
    public EventualReplicator Replicator { get; }

    /// <summary>Where the replica keeps its data.</summary>
    public EventualJournal Journal { get; }

    /// <summary>Where this replica takes its peers' requests.</summary>
    public System.Net.IPEndPoint EndPoint => _link.EndPoint;

    /// <summary>The directory the replicas of <paramref name="store"/> meet in, under the workload's state directory.</summary>
    /// <remarks>"+eventual" cannot be a store name, so it never collides with a strong store's directory.</remarks>
    public static string DirectoryOf(StrongStoreContext context, string store) =>
        Path.Combine((context ?? throw new ArgumentNullException(nameof(context))).Directory, "+eventual", store);

    /// <summary>
    /// Loads the store's data kept on this node, and starts replicating <paramref name="store"/> with
    /// the workload's other replicas of it: those on this node, and with <see cref="StrongStoreContext.Mesh"/>,
    /// one on each other node that runs the workload, through that node's tunnel port.
    /// </summary>
    public static EventualReplica Start(
        EventualStore store, StrongStoreContext context, EventualReplicationOptions options, EventualStateCounters counters,
        ILoggerFactory loggerFactory, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        ArgumentNullException.ThrowIfNull(time);
        string directory = DirectoryOf(context, store.Name);
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        ILogger logger = loggerFactory.CreateLogger("beemesh.state.eventual");
        using FileStream joinLock = ReplicaSlot.LockStoreAsync(directory, LockTimeout, CancellationToken.None).GetAwaiter().GetResult();
        (ReplicaSlot slot, List<System.Net.IPEndPoint> live) = ReplicaSlot.Claim(directory, StateDirectoryDiscovery.EndPointName, reclaimEndPoint: null);
        List<ReplicaSlot> gone = [];
        ReplicaLink? link = null;
        IDisposable? served = null;
        EventualJournal? journal = null;
        try
        {
            gone = ReplicaSlot.ClaimGone(directory, slot.Path);
            DateTimeOffset staleBefore = time.GetUtcNow() - store.Options.TombstoneGrace;
            bool othersRun = live.Count > 0 || (context.Mesh is not null && context.Mesh.RemoteNodes().Count > 0);
            if (othersRun && IsStale(slot.Path, staleBefore))
            {
                logger.LogWarning("eventual store {Store}: {Slot} holds data older than the tombstone grace period: not loaded, the running replicas are newer", store.Name, slot.Path);
                DeleteJournalFiles(slot.Path);
            }

            List<string> adopt = gone.Where(g => !(othersRun && IsStale(g.Path, staleBefore))).Select(static g => g.Path).ToList();
            journal = EventualJournal.Open(slot.Path, store, adopt, options, counters, logger, time);
            foreach (ReplicaSlot old in gone)
            {
                old.Delete();
                old.Dispose();
            }

            gone.Clear();
            IReplicaDiscovery discovery = new StateDirectoryDiscovery(directory, slot.Path);
            MeshReplicaDiscovery? mesh = context.Mesh is null ? null : new MeshReplicaDiscovery(discovery, context.Mesh);
            link = new ReplicaLink($"eventual store {store.Name}", context.Source, context.Identity, options.MaxFrameBytes, logger, counters.CountRefusedFrame, context.ListenAddress)
            {
                Protocol = mesh is null ? null : ReplicaLink.ProtocolFor("eventual", store.Name),
                TunnelServerName = mesh is null ? null : mesh.ServerNameOf,
            };
            var replicator = new EventualReplicator(store, mesh ?? discovery, link, options, counters, logger, time) { Journal = journal };
            link.Start(replicator.HandleAsync);
            if (context.Mesh is not null)
            {
                served = context.Mesh.Serve(link.Protocol!.Value, link.ServeTunnelledAsync);
            }

            slot.WriteEndpoints(new Dictionary<string, System.Net.IPEndPoint> { [StateDirectoryDiscovery.EndPointName] = link.EndPoint });
            replicator.Start();
            logger.LogInformation("eventual store {Store}: replica {EndPoint} in {Directory}", store.Name, link.EndPoint, directory);
            return new EventualReplica(directory, slot, link, (IReplicaDiscovery?)mesh ?? discovery, replicator, journal, served, logger);
        }
        catch
        {
            served?.Dispose();
            link?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            journal?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            foreach (ReplicaSlot old in gone)
            {
                old.Dispose();
            }

            slot.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _served?.Dispose();
        await Replicator.DisposeAsync().ConfigureAwait(false);
        bool handedOver = false;
        try
        {
            using FileStream joinLock = await ReplicaSlot.LockStoreAsync(_directory, LockTimeout, CancellationToken.None).ConfigureAwait(false);
            IReadOnlyList<System.Net.IPEndPoint> peers = _discovery.FindPeers();
            if (peers.Count > 0)
            {
                handedOver = await Replicator.HandOverAsync(peers, maxRounds: 64, CancellationToken.None).ConfigureAwait(false);
            }

            await _link.DisposeAsync().ConfigureAwait(false);
            await Journal.DisposeAsync().ConfigureAwait(false);
            if (handedOver)
            {
                _slot.Delete();
            }
            else
            {
                _logger.LogInformation(
                    "eventual store {Store}: {Count} entries kept in {Slot} for the next replica to start", Replicator.Store.Name, Replicator.Store.Count, _slot.Path);
            }
        }
        catch (IOException e)
        {
            _logger.LogWarning("eventual store {Store}: stopping without the store's lock: {Error}; the data stays in {Slot}", Replicator.Store.Name, e.Message, _slot.Path);
            await _link.DisposeAsync().ConfigureAwait(false);
            await Journal.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _slot.Dispose();
        }
    }

    private static bool IsStale(string slot, DateTimeOffset before)
    {
        DateTime newest = DateTime.MinValue;
        foreach (string file in EventualJournal.AllFiles(slot))
        {
            DateTime written = File.GetLastWriteTimeUtc(file);
            newest = written > newest ? written : newest;
        }

        return newest != DateTime.MinValue && newest < before.UtcDateTime;
    }

    private static void DeleteJournalFiles(string slot)
    {
        foreach (string file in EventualJournal.AllFiles(slot).ToList())
        {
            File.Delete(file);
        }
    }
}
