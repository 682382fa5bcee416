using System.Security.Cryptography;
using Beemesh.State.Api;
using Beemesh.State.Eventual;
using Beemesh.Sidecar.State.Eventual;
using Beemesh.Sidecar.State.Strong;
using Beemesh.Sidecar.Telemetry;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.State;

/// <summary>
/// The state API one workload gets: its stores (eventual ones replicated among the workload's
/// replicas when it is in the mesh, strong ones in a Raft group), the <see cref="StateApiServer"/> on
/// the given listeners, and a timer that collects tombstones and expired values once a minute.
/// </summary>
public sealed class WorkloadStateApi : IAsyncDisposable
{
    /// <summary>Dapr's HTTP port, where apps look by default.</summary>
    public const int HttpPort = DaprEnvironment.HttpPort;

    /// <summary>Dapr's gRPC port.</summary>
    public const int GrpcPort = DaprEnvironment.GrpcPort;

    private readonly StateApiServer _server;
    private readonly ITimer _collector;
    private readonly IReadOnlyList<StrongStore> _strong;
    private readonly IReadOnlyList<EventualReplica> _eventual;

    private WorkloadStateApi(StateApiServer server, StateStoreSet stores, ITimer collector, IReadOnlyList<StrongStore> strong, IReadOnlyList<EventualReplica> eventual)
    {
        _server = server;
        Stores = stores;
        _collector = collector;
        _strong = strong;
        _eventual = eventual;
    }

    /// <summary>The workload's replicated eventual stores (empty outside the mesh).</summary>
    public IReadOnlyList<EventualReplica> EventualReplicas => _eventual;

    /// <summary>The workload's strong stores (replicas of Raft groups).</summary>
    public IReadOnlyList<StrongStore> StrongStores => _strong;

    /// <summary>The workload's stores.</summary>
    public StateStoreSet Stores { get; }

    /// <summary>The server, for its bound addresses.</summary>
    public StateApiServer Server => _server;

    /// <summary>The variables Dapr SDKs read to find the API, for listeners on 127.0.0.1:3500 and :50001 (<see cref="DaprEnvironment"/>).</summary>
    public static Dictionary<string, string> Environment(string appId) => new(DaprEnvironment.For(appId));

    /// <summary>Creates the stores of <paramref name="specs"/> for <paramref name="appId"/> and starts serving them.</summary>
    public static Task<WorkloadStateApi> StartAsync(
        string appId, IReadOnlyList<StateStoreSpec> specs, StateApiListener http, StateApiListener grpc,
        ILoggerFactory loggerFactory, TimeProvider time, CancellationToken cancellationToken) =>
        StartAsync(appId, specs, null, http, grpc, loggerFactory, time, cancellationToken);

    /// <summary>
    /// Creates the stores of <paramref name="specs"/> for <paramref name="appId"/> and starts serving
    /// them. <paramref name="strong"/> gives the workload's identity and the directory of its stores:
    /// a strong store joins its Raft group, an eventual store replicates with the workload's other
    /// replicas (<paramref name="replication"/>, counted in <paramref name="counters"/>). Without it a
    /// strong store is refused and an eventual store is local to this sidecar.
    /// </summary>
    public static async Task<WorkloadStateApi> StartAsync(
        string appId, IReadOnlyList<StateStoreSpec> specs, StrongStoreContext? strong, StateApiListener http, StateApiListener grpc,
        ILoggerFactory loggerFactory, TimeProvider time, CancellationToken cancellationToken,
        EventualReplicationOptions? replication = null, EventualStateCounters? counters = null)
    {
        ArgumentNullException.ThrowIfNull(specs);
        ArgumentNullException.ThrowIfNull(time);
        ulong replica = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));
        var all = new List<IStateStore>();
        var strongStores = new List<StrongStore>();
        var eventualReplicas = new List<EventualReplica>();
        StateApiServer server;
        StateStoreSet stores;
        try
        {
            foreach (StateStoreSpec spec in specs)
            {
                if (spec.Consistency == "strong")
                {
                    if (strong is null)
                    {
                        throw new InvalidOperationException($"state store {spec.Name}: strong consistency needs the mesh (an agent and the workload's SVID)");
                    }

                    StrongStore store = await StrongStore.StartAsync(
                        new StrongStoreOptions
                        {
                            Name = spec.Name,
                            Directory = Path.Combine(strong.Directory, spec.Name),
                            Source = strong.Source,
                            Identity = strong.Identity,
                            ListenAddress = strong.ListenAddress,
                            Mesh = strong.Mesh,
                            LoggerFactory = loggerFactory,
                            Time = time,
                        },
                        cancellationToken).ConfigureAwait(false);
                    strongStores.Add(store);
                    all.Add(store);
                }
                else if (strong is null)
                {
                    all.Add(new EventualStateStore(new EventualStore(spec.Name, replica, time)));
                }
                else
                {
                    EventualReplica eventual = EventualReplica.Start(
                        new EventualStore(spec.Name, replica, time), strong, replication ?? new EventualReplicationOptions(),
                        counters ?? new EventualStateCounters(), loggerFactory, time);
                    eventualReplicas.Add(eventual);
                    all.Add(new EventualStateStore(eventual.Replicator.Store, eventual.Replicator, eventual.Journal));
                }
            }

            stores = new StateStoreSet(appId, all);
            server = await StateApiServer.StartAsync(stores, http, grpc, loggerFactory, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            foreach (StrongStore store in strongStores)
            {
                await store.DisposeAsync().ConfigureAwait(false);
            }

            foreach (EventualReplica eventual in eventualReplicas)
            {
                await eventual.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }

        ITimer collector = time.CreateTimer(
            static state =>
            {
                foreach (string name in ((StateStoreSet)state!).Names)
                {
                    (((StateStoreSet)state).Find(name) as EventualStateStore)?.Store.CollectGarbage();
                }
            },
            stores, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
        return new WorkloadStateApi(server, stores, collector, strongStores, eventualReplicas);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _collector.DisposeAsync().ConfigureAwait(false);
        await _server.DisposeAsync().ConfigureAwait(false);
        foreach (StrongStore store in _strong)
        {
            await store.DisposeAsync().ConfigureAwait(false);
        }

        foreach (EventualReplica eventual in _eventual)
        {
            await eventual.DisposeAsync().ConfigureAwait(false);
        }
    }
}
