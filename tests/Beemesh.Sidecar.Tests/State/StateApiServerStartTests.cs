using System.Net;
using System.Net.Sockets;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>The state API server starts on its first connection; its ports listen from the start.</summary>
public sealed class StateApiServerStartTests
{
    [Fact]
    public async Task ServesNothingUntilTheFirstConnectionThenAnswersIt()
    {
        await using var api = await StateApiFixture.StartAsync();
        Assert.False(api.Server.IsServing);
        Assert.False(api.Server.Serving.IsCompleted);

        // The first request is the first connection: it waits in the backlog while the server starts.
        HttpResponseMessage missing = await api.Http.GetAsync("/v1.0/state/statestore/none");
        Assert.Equal(HttpStatusCode.NoContent, missing.StatusCode);
        Assert.True(api.Server.IsServing);
    }

    [Fact]
    public async Task AConnectionToTheGrpcPortStartsBothListeners()
    {
        await using var api = await StateApiFixture.StartAsync();
        using (var grpc = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await grpc.ConnectAsync(api.Server.GrpcEndPoint!);
            await api.Server.Serving;
        }

        Assert.True(api.Server.IsServing);
        HttpResponseMessage missing = await api.Http.GetAsync("/v1.0/state/statestore/none");
        Assert.Equal(HttpStatusCode.NoContent, missing.StatusCode);
    }

    [Fact]
    public async Task DisposedBeforeAnyConnectionClosesBothPorts()
    {
        var api = await StateApiFixture.StartAsync();
        IPEndPoint http = api.Server.HttpEndPoint!;
        IPEndPoint grpc = api.Server.GrpcEndPoint!;
        await api.DisposeAsync();

        Assert.False(api.Server.IsServing);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => api.Server.Serving);
        foreach (IPEndPoint endPoint in new[] { http, grpc })
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            SocketException refused = await Assert.ThrowsAsync<SocketException>(async () => await socket.ConnectAsync(endPoint));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }
    }
}
