using System.Net.Sockets;
using Dapr.Client.Autogen.Grpc.v1;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Beemesh.LoadTests.StateBench;

/// <summary>
/// Dapr's state API over gRPC (<c>dapr.proto.runtime.v1.Dapr</c>: SaveState, GetState) on one
/// HTTP/2 cleartext connection, as the Dapr SDKs call it. The value bytes go as they are.
/// </summary>
internal sealed class DaprGrpcKvClient : IKvClient
{
    private readonly GrpcChannel _channel;
    private readonly Dapr.Client.Autogen.Grpc.v1.Dapr.DaprClient _client;
    private readonly string _store;

    public DaprGrpcKvClient(string address, string store)
    {
        _store = store;
        _channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                UseProxy = false,
                EnableMultipleHttp2Connections = false,
                PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
                ConnectCallback = async (context, token) =>
                {
                    var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    try
                    {
                        await socket.ConnectAsync(context.DnsEndPoint, token).ConfigureAwait(false);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            },
        });
        _client = new Dapr.Client.Autogen.Grpc.v1.Dapr.DaprClient(_channel);
    }

    public async Task PutAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken)
    {
        var request = new SaveStateRequest { StoreName = _store };
        request.States.Add(new Dapr.Client.Autogen.Grpc.v1.StateItem { Key = key, Value = ByteString.CopyFrom(value.Span) });
        try
        {
            await _client.SaveStateAsync(request, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
        {
            // Cut off by the end of the run, as the HTTP clients are: not a failure of the store.
            throw new OperationCanceledException(cancellationToken);
        }
    }

    public async Task<int> GetAsync(string key, CancellationToken cancellationToken)
    {
        try
        {
            GetStateResponse response = await _client.GetStateAsync(new GetStateRequest { StoreName = _store, Key = key }, cancellationToken: cancellationToken).ConfigureAwait(false);
            return response.Data.IsEmpty && string.IsNullOrEmpty(response.Etag) ? -1 : response.Data.Length;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException(cancellationToken);
        }
    }

    public void Dispose() => _channel.Dispose();
}
