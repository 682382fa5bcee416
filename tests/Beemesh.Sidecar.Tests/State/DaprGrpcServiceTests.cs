using System.Text;
using Dapr.Client.Autogen.Grpc.v1;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using DaprStub = Dapr.Client.Autogen.Grpc.v1.Dapr;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>Dapr's gRPC state contract through the Dapr.Protos client stub, in process over loopback h2c.</summary>
public sealed class DaprGrpcServiceTests
{
    private static StateItem Item(string key, string value, string? etag = null, StateOptions.Types.StateConcurrency concurrency = StateOptions.Types.StateConcurrency.ConcurrencyUnspecified)
    {
        var item = new StateItem { Key = key, Value = ByteString.CopyFromUtf8(value), Options = new StateOptions { Concurrency = concurrency } };
        if (etag is not null)
        {
            item.Etag = new Etag { Value = etag };
        }

        return item;
    }

    private static async Task<(StateApiFixture Api, GrpcChannel Channel, DaprStub.DaprClient Client)> StartAsync()
    {
        StateApiFixture api = await StateApiFixture.StartAsync();
        GrpcChannel channel = GrpcChannel.ForAddress(api.GrpcAddress);
        return (api, channel, new DaprStub.DaprClient(channel));
    }

    [Fact]
    public async Task SaveGetDeleteAndAnETagMismatchIsAborted()
    {
        var (api, channel, client) = await StartAsync();
        await using (api)
        using (channel)
        {
            await client.SaveStateAsync(new SaveStateRequest { StoreName = "statestore", States = { Item("k", "\"v1\"") } });
            GetStateResponse got = await client.GetStateAsync(new GetStateRequest { StoreName = "statestore", Key = "k" });
            Assert.Equal("\"v1\"", got.Data.ToStringUtf8());
            Assert.Equal(api.Store.Get("api||k")!.ETag, got.Etag);

            await client.SaveStateAsync(new SaveStateRequest { StoreName = "statestore", States = { Item("k", "\"v2\"") } });
            var mismatch = await Assert.ThrowsAsync<RpcException>(async () =>
                await client.SaveStateAsync(new SaveStateRequest { StoreName = "statestore", States = { Item("k", "\"v3\"", got.Etag) } }));
            Assert.Equal(StatusCode.Aborted, mismatch.StatusCode);
            var firstWrite = await Assert.ThrowsAsync<RpcException>(async () =>
                await client.SaveStateAsync(new SaveStateRequest { StoreName = "statestore", States = { Item("k", "\"v3\"", concurrency: StateOptions.Types.StateConcurrency.ConcurrencyFirstWrite) } }));
            Assert.Equal(StatusCode.Aborted, firstWrite.StatusCode);

            var staleDelete = await Assert.ThrowsAsync<RpcException>(async () =>
                await client.DeleteStateAsync(new DeleteStateRequest { StoreName = "statestore", Key = "k", Etag = new Etag { Value = got.Etag } }));
            Assert.Equal(StatusCode.Aborted, staleDelete.StatusCode);
            await client.DeleteStateAsync(new DeleteStateRequest { StoreName = "statestore", Key = "k" });
            GetStateResponse gone = await client.GetStateAsync(new GetStateRequest { StoreName = "statestore", Key = "k" });
            Assert.True(gone.Data.IsEmpty);
            Assert.Equal(string.Empty, gone.Etag);
        }
    }

    [Fact]
    public async Task BadRequestsAreInvalidArgumentAndOtherMethodsUnimplemented()
    {
        var (api, channel, client) = await StartAsync();
        await using (api)
        using (channel)
        {
            var noStore = await Assert.ThrowsAsync<RpcException>(async () => await client.GetStateAsync(new GetStateRequest { StoreName = "nosuch", Key = "k" }));
            Assert.Equal(StatusCode.InvalidArgument, noStore.StatusCode);
            Assert.Contains("nosuch", noStore.Status.Detail, StringComparison.Ordinal);
            var badKey = await Assert.ThrowsAsync<RpcException>(async () => await client.SaveStateAsync(new SaveStateRequest { StoreName = "statestore", States = { Item("x||k", "1") } }));
            Assert.Equal(StatusCode.InvalidArgument, badKey.StatusCode);
            var unimplemented = await Assert.ThrowsAsync<RpcException>(async () => await client.GetSecretAsync(new GetSecretRequest { StoreName = "s", Key = "k" }));
            Assert.Equal(StatusCode.Unimplemented, unimplemented.StatusCode);
            var tooLarge = await Assert.ThrowsAsync<RpcException>(async () =>
                await client.SaveStateAsync(new SaveStateRequest { StoreName = "statestore", States = { Item("big", new string('x', 5 * 1024 * 1024)) } }));
            Assert.Equal(StatusCode.ResourceExhausted, tooLarge.StatusCode);
            Assert.Equal(0, api.Store.Count);
        }
    }

    [Fact]
    public async Task BulkAndTransactionSeeTheSameStoreAsHttp()
    {
        var (api, channel, client) = await StartAsync();
        await using (api)
        using (channel)
        {
            await api.Http.PostAsync("/v1.0/state/statestore", new StringContent("""[{"key":"h","value":{"from":"http"}}]""", Encoding.UTF8, "application/json"));
            await client.ExecuteStateTransactionAsync(new ExecuteStateTransactionRequest
            {
                StoreName = "statestore",
                Operations =
                {
                    new TransactionalStateOperation { OperationType = "upsert", Request = Item("g", "\"grpc\"") },
                    new TransactionalStateOperation { OperationType = "delete", Request = new StateItem { Key = "h" } },
                },
            });
            GetBulkStateResponse bulk = await client.GetBulkStateAsync(new GetBulkStateRequest { StoreName = "statestore", Keys = { "g", "h" } });
            Assert.Equal(["g", "h"], bulk.Items.Select(i => i.Key));
            Assert.Equal("\"grpc\"", bulk.Items[0].Data.ToStringUtf8());
            Assert.NotEmpty(bulk.Items[0].Etag);
            Assert.True(bulk.Items[1].Data.IsEmpty);

            var mismatch = await Assert.ThrowsAsync<RpcException>(async () => await client.ExecuteStateTransactionAsync(new ExecuteStateTransactionRequest
            {
                StoreName = "statestore",
                Operations =
                {
                    new TransactionalStateOperation { OperationType = "upsert", Request = Item("n", "1") },
                    new TransactionalStateOperation { OperationType = "upsert", Request = Item("g", "2", "1-1") },
                },
            }));
            Assert.Equal(StatusCode.Aborted, mismatch.StatusCode);
            Assert.Null(api.Store.Get("api||n"));
        }
    }
}
