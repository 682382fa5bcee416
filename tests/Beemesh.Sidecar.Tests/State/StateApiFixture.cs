using System.Net;
using Beemesh.Sidecar.State;
using Beemesh.State.Eventual;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>A state API server for app <c>api</c> with one eventual store, <c>statestore</c>, on loopback ports of its own.</summary>
public sealed class StateApiFixture : IAsyncDisposable
{
    private StateApiFixture(StateApiServer server, EventualStore store)
    {
        Server = server;
        Store = store;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.HttpEndPoint!.Port}") };
    }

    public StateApiServer Server { get; }

    public EventualStore Store { get; }

    public HttpClient Http { get; }

    public Uri GrpcAddress => new($"http://127.0.0.1:{Server.GrpcEndPoint!.Port}");

    public static async Task<StateApiFixture> StartAsync(EventualStoreOptions? options = null)
    {
        var store = new EventualStore("statestore", 1, TimeProvider.System, options);
        var stores = new StateStoreSet("api", [store]);
        StateApiServer server = await StateApiServer.StartAsync(
            stores,
            StateApiListener.Bind(new IPEndPoint(IPAddress.Loopback, 0)),
            StateApiListener.Bind(new IPEndPoint(IPAddress.Loopback, 0)),
            NullLoggerFactory.Instance,
            CancellationToken.None);
        return new StateApiFixture(server, store);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }
}
