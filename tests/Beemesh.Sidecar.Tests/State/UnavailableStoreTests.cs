using System.Net;
using Beemesh.Sidecar.State;
using Beemesh.Sidecar.State.Strong;
using Beemesh.State.Api;
using Dapr.Client.Autogen.Grpc.v1;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging.Abstractions;
using DaprStub = Dapr.Client.Autogen.Grpc.v1.Dapr;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>A strong store without quorum, as both front ends report it: Dapr's error codes, HTTP 500 and gRPC UNAVAILABLE.</summary>
public sealed class UnavailableStoreTests : IAsyncLifetime
{
    private StateApiServer _server = null!;

    public async Task InitializeAsync() =>
        _server = await StateApiServer.StartAsync(
            new StateStoreSet("api", [new NoQuorumStore()]),
            StateApiListener.Bind(new IPEndPoint(IPAddress.Loopback, 0)),
            StateApiListener.Bind(new IPEndPoint(IPAddress.Loopback, 0)),
            NullLoggerFactory.Instance,
            CancellationToken.None);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Theory]
    [InlineData("POST", "", "[{\"key\":\"k\",\"value\":1}]", "ERR_STATE_SAVE")]
    [InlineData("GET", "/k", null, "ERR_STATE_GET")]
    [InlineData("DELETE", "/k", null, "ERR_STATE_DELETE")]
    [InlineData("POST", "/bulk", "{\"keys\":[\"k\"]}", "ERR_STATE_BULK_GET")]
    [InlineData("POST", "/transaction", "{\"operations\":[{\"operation\":\"upsert\",\"request\":{\"key\":\"k\",\"value\":1}}]}", "ERR_STATE_TRANSACTION")]
    public async Task HttpAnswers500WithDaprsCodeAndTheReason(string method, string path, string? body, string code)
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_server.HttpEndPoint!.Port}") };
        using var request = new HttpRequestMessage(new HttpMethod(method), "/v1.0/state/statestore" + path);
        if (body is not null)
        {
            request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        }

        using HttpResponseMessage response = await http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Contains($"\"errorCode\":\"{code}\"", text, StringComparison.Ordinal);
        Assert.Contains("state store unavailable: no quorum within 5 s", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GrpcAnswersUnavailable()
    {
        using GrpcChannel channel = GrpcChannel.ForAddress($"http://127.0.0.1:{_server.GrpcEndPoint!.Port}");
        var client = new DaprStub.DaprClient(channel);
        RpcException save = await Assert.ThrowsAsync<RpcException>(async () => await client.SaveStateAsync(new SaveStateRequest
        {
            StoreName = "statestore",
            States = { new StateItem { Key = "k", Value = ByteString.CopyFromUtf8("1") } },
        }));
        Assert.Equal(StatusCode.Unavailable, save.StatusCode);
        RpcException get = await Assert.ThrowsAsync<RpcException>(async () => await client.GetStateAsync(new GetStateRequest { StoreName = "statestore", Key = "k" }));
        Assert.Equal(StatusCode.Unavailable, get.StatusCode);
        Assert.Contains("no quorum", get.Status.Detail, StringComparison.Ordinal);
    }

    private sealed class NoQuorumStore : IStateStore
    {
        public string Name => "statestore";

        public long Bytes => 0;

        public Task<StateValue?[]> GetAsync(IReadOnlyList<string> scopedKeys, CancellationToken cancellationToken) =>
            Task.FromException<StateValue?[]>(new StrongStoreUnavailableException("no quorum within 5 s"));

        public Task<StateWriteResult> WriteAsync(IReadOnlyList<StateOperation> operations, CancellationToken cancellationToken) =>
            Task.FromException<StateWriteResult>(new StrongStoreUnavailableException("no quorum within 5 s"));
    }
}
