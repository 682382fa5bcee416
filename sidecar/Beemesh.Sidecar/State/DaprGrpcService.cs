using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Beemesh.State.Api;
using Beemesh.State.Eventual;
using Dapr.Client.Autogen.Grpc.v1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Beemesh.Sidecar.State;

/// <summary>
/// The state methods of Dapr's gRPC service <c>dapr.proto.runtime.v1.Dapr</c>: GetState,
/// SaveState, DeleteState, GetBulkState and ExecuteStateTransaction, on the message types of the
/// Dapr.Protos package. That package ships only the client stubs, so the server binding is
/// written here (<see cref="BindService"/>) with the same method names and marshallers; every
/// other method of the service answers UNIMPLEMENTED (the gRPC server does that for any method
/// it has no binding for). The gRPC server finds each handler by name and requires it to be
/// virtual and declared here, hence the virtual methods. An ETag mismatch is ABORTED, which the SDKs' TrySave turns into false.
/// </summary>
[BindServiceMethod(typeof(DaprGrpcService), nameof(BindService))]
public class DaprGrpcService
{
    /// <summary>The service's full name.</summary>
    public const string ServiceName = "dapr.proto.runtime.v1.Dapr";

    private static readonly Method<GetStateRequest, GetStateResponse> GetStateMethod = Unary("GetState", GetStateRequest.Parser, GetStateResponse.Parser);
    private static readonly Method<SaveStateRequest, Empty> SaveStateMethod = Unary("SaveState", SaveStateRequest.Parser, Empty.Parser);
    private static readonly Method<DeleteStateRequest, Empty> DeleteStateMethod = Unary("DeleteState", DeleteStateRequest.Parser, Empty.Parser);
    private static readonly Method<GetBulkStateRequest, GetBulkStateResponse> GetBulkStateMethod = Unary("GetBulkState", GetBulkStateRequest.Parser, GetBulkStateResponse.Parser);
    private static readonly Method<ExecuteStateTransactionRequest, Empty> ExecuteStateTransactionMethod = Unary("ExecuteStateTransaction", ExecuteStateTransactionRequest.Parser, Empty.Parser);

    private readonly StateStoreSet _stores;

    /// <summary>Serves <paramref name="stores"/>.</summary>
    public DaprGrpcService(StateStoreSet stores)
    {
        ArgumentNullException.ThrowIfNull(stores);
        _stores = stores;
    }

    /// <summary>Binds the five state methods; called by the gRPC server with a null instance to discover them.</summary>
    public static void BindService(ServiceBinderBase binder, DaprGrpcService? service)
    {
        ArgumentNullException.ThrowIfNull(binder);
        binder.AddMethod(GetStateMethod, service is null ? null : service.GetState);
        binder.AddMethod(SaveStateMethod, service is null ? null : service.SaveState);
        binder.AddMethod(DeleteStateMethod, service is null ? null : service.DeleteState);
        binder.AddMethod(GetBulkStateMethod, service is null ? null : service.GetBulkState);
        binder.AddMethod(ExecuteStateTransactionMethod, service is null ? null : service.ExecuteStateTransaction);
    }

    /// <summary>GetState: the value and ETag, or an empty response when absent.</summary>
    public virtual async Task<GetStateResponse> GetState(GetStateRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        IStateStore store = Store(request.StoreName);
        StateValue? value = (await ReadAsync(store, [Scope(request.Key)], "ERR_STATE_GET", context).ConfigureAwait(false))[0];
        var response = new GetStateResponse();
        if (value is not null)
        {
            // The store's bytes are never modified (StateValue), so the response refers to them: no copy.
            response.Data = UnsafeByteOperations.UnsafeWrap(value.Value);
            response.Etag = value.ETag;
            if (value.ExpiresAt is DateTimeOffset expires)
            {
                response.Metadata["ttlExpireTime"] = expires.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
            }
        }

        return response;
    }

    /// <summary>SaveState: every item or none.</summary>
    public virtual async Task<Empty> SaveState(SaveStateRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        IStateStore store = Store(request.StoreName);
        var operations = new List<StateOperation>(request.States.Count);
        foreach (StateItem item in request.States)
        {
            operations.Add(Operation(item, delete: false));
        }

        Check(await StateApiCore.WriteAsync(store, operations, StateApiCore.WriteKind.Save, context.CancellationToken).ConfigureAwait(false));
        return new Empty();
    }

    /// <summary>DeleteState.</summary>
    public virtual async Task<Empty> DeleteState(DeleteStateRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        IStateStore store = Store(request.StoreName);
        var operation = StateOperation.Delete(Scope(request.Key), request.Etag?.Value, Concurrency(request.Options));
        Check(await StateApiCore.WriteAsync(store, [operation], StateApiCore.WriteKind.Delete, context.CancellationToken).ConfigureAwait(false));
        return new Empty();
    }

    /// <summary>GetBulkState: one item per key, without data where the key is absent.</summary>
    public virtual async Task<GetBulkStateResponse> GetBulkState(GetBulkStateRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        IStateStore store = Store(request.StoreName);
        var response = new GetBulkStateResponse();
        StateValue?[] values = await ReadAsync(store, [.. request.Keys.Select(Scope)], "ERR_STATE_BULK_GET", context).ConfigureAwait(false);
        int index = 0;
        foreach (string key in request.Keys)
        {
            StateValue? value = values[index++];
            var item = new BulkStateItem { Key = key };
            if (value is not null)
            {
                item.Data = UnsafeByteOperations.UnsafeWrap(value.Value);
                item.Etag = value.ETag;
            }

            response.Items.Add(item);
        }

        return response;
    }

    /// <summary>ExecuteStateTransaction: upserts and deletes, all or none.</summary>
    public virtual async Task<Empty> ExecuteStateTransaction(ExecuteStateTransactionRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        IStateStore store = Store(request.StoreName);
        var operations = new List<StateOperation>(request.Operations.Count);
        foreach (TransactionalStateOperation operation in request.Operations)
        {
            bool delete = operation.OperationType switch
            {
                "upsert" => false,
                "delete" => true,
                _ => throw new RpcException(new Status(StatusCode.Unimplemented, $"operation type {operation.OperationType} not supported")),
            };
            if (operation.Request is null)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, "every operation needs a request"));
            }

            operations.Add(Operation(operation.Request, delete));
        }

        Check(await StateApiCore.WriteAsync(store, operations, StateApiCore.WriteKind.Transaction, context.CancellationToken).ConfigureAwait(false));
        return new Empty();
    }

    private StateOperation Operation(StateItem item, bool delete)
    {
        string scoped = Scope(item.Key);
        if (!StateRequestParser.TryParseTtl(item.Metadata.TryGetValue("ttlInSeconds", out string? ttlText) ? ttlText : null, out TimeSpan? ttl, out string? error))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, error!));
        }

        return new StateOperation(scoped, delete ? null : item.Value.ToByteArray(), item.Etag?.Value, Concurrency(item.Options), delete ? null : ttl);
    }

    private static StateConcurrency Concurrency(StateOptions? options) => options?.Concurrency switch
    {
        StateOptions.Types.StateConcurrency.ConcurrencyFirstWrite => StateConcurrency.FirstWrite,
        StateOptions.Types.StateConcurrency.ConcurrencyLastWrite => StateConcurrency.LastWrite,
        _ => StateConcurrency.Unspecified,
    };

    private IStateStore Store(string name)
    {
        Check(StateApiCore.FindStore(_stores, name, out IStateStore store));
        return store;
    }

    private static async Task<StateValue?[]> ReadAsync(IStateStore store, IReadOnlyList<string> scopedKeys, string code, ServerCallContext context)
    {
        (StateValue?[]? values, StateApiError? error) = await StateApiCore.ReadAsync(store, scopedKeys, code, context.CancellationToken).ConfigureAwait(false);
        Check(error);
        return values!;
    }

    private string Scope(string key)
    {
        Check(StateApiCore.Scope(_stores, key, out string scoped));
        return scoped;
    }

    private static void Check(StateApiError? error)
    {
        if (error is not null)
        {
            Throw(error);
        }
    }

    [DoesNotReturn]
    private static void Throw(StateApiError error) =>
        throw new RpcException(new Status(error.GrpcStatus, error.Message), new Metadata { { "dapr-error-code", error.ErrorCode } });

    private static Method<TRequest, TResponse> Unary<TRequest, TResponse>(string name, MessageParser<TRequest> requestParser, MessageParser<TResponse> responseParser)
        where TRequest : class, IMessage<TRequest>, IBufferMessage
        where TResponse : class, IMessage<TResponse>, IBufferMessage =>
        new(MethodType.Unary, ServiceName, name, Marshaller(requestParser), Marshaller(responseParser));

    /// <summary>
    /// A marshaller on the gRPC server's buffers: a request is parsed from the received frame in place
    /// and a response written straight into the response pipe, where the byte-array form
    /// (<c>ToByteArray</c>/<c>ParseFrom(byte[])</c>) copied each message once more into an array of its own.
    /// </summary>
    private static Marshaller<T> Marshaller<T>(MessageParser<T> parser)
        where T : class, IMessage<T>, IBufferMessage =>
        Marshallers.Create(
            static (T message, SerializationContext context) =>
            {
                context.SetPayloadLength(message.CalculateSize());
                message.WriteTo(context.GetBufferWriter());
                context.Complete();
            },
            context => parser.ParseFrom(context.PayloadAsReadOnlySequence()));
}
