using System.Security.Cryptography;
using Beemesh.State.Eventual;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.State;

/// <summary>
/// The state API one workload gets: its stores (local to this sidecar, eventual), the
/// <see cref="StateApiServer"/> on the given listeners, and a timer that collects tombstones and
/// expired values once a minute.
/// </summary>
public sealed class WorkloadStateApi : IAsyncDisposable
{
    /// <summary>Dapr's HTTP port, where apps look by default.</summary>
    public const int HttpPort = 3500;

    /// <summary>Dapr's gRPC port.</summary>
    public const int GrpcPort = 50001;

    private readonly StateApiServer _server;
    private readonly ITimer _collector;

    private WorkloadStateApi(StateApiServer server, StateStoreSet stores, ITimer collector)
    {
        _server = server;
        Stores = stores;
        _collector = collector;
    }

    /// <summary>The workload's stores.</summary>
    public StateStoreSet Stores { get; }

    /// <summary>The server, for its bound addresses.</summary>
    public StateApiServer Server => _server;

    /// <summary>The variables Dapr SDKs read to find the API, for listeners on 127.0.0.1:3500 and :50001.</summary>
    public static Dictionary<string, string> Environment(string appId) => new()
    {
        ["APP_ID"] = appId,
        ["DAPR_HTTP_PORT"] = "3500",
        ["DAPR_GRPC_PORT"] = "50001",
        ["DAPR_HTTP_ENDPOINT"] = "http://127.0.0.1:3500",
        ["DAPR_GRPC_ENDPOINT"] = "http://127.0.0.1:50001",
    };

    /// <summary>Creates the stores of <paramref name="specs"/> for <paramref name="appId"/> and starts serving them.</summary>
    public static async Task<WorkloadStateApi> StartAsync(
        string appId, IReadOnlyList<StateStoreSpec> specs, StateApiListener http, StateApiListener grpc,
        ILoggerFactory loggerFactory, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(specs);
        ArgumentNullException.ThrowIfNull(time);
        ulong replica = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));
        var stores = new StateStoreSet(appId, specs.Select(s => new EventualStore(s.Name, replica, time)).ToList());
        StateApiServer server = await StateApiServer.StartAsync(stores, http, grpc, loggerFactory, cancellationToken).ConfigureAwait(false);
        ITimer collector = time.CreateTimer(
            static state =>
            {
                foreach (string name in ((StateStoreSet)state!).Names)
                {
                    ((StateStoreSet)state).Find(name)!.CollectGarbage();
                }
            },
            stores, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
        return new WorkloadStateApi(server, stores, collector);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _collector.DisposeAsync().ConfigureAwait(false);
        await _server.DisposeAsync().ConfigureAwait(false);
    }
}
