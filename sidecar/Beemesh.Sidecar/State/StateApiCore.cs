using Beemesh.State.Api;
using Beemesh.State.Eventual;
using Grpc.Core;

namespace Beemesh.Sidecar.State;

/// <summary>The checks and status mapping the HTTP and gRPC front ends share, so both answer alike.</summary>
internal static class StateApiCore
{
    /// <summary>Which Dapr call a write belongs to: it decides the error code and, for a transaction, the status of an ETag mismatch.</summary>
    public enum WriteKind
    {
        /// <summary>Save (<c>ERR_STATE_SAVE</c>).</summary>
        Save,

        /// <summary>Delete (<c>ERR_STATE_DELETE</c>).</summary>
        Delete,

        /// <summary>Transaction (<c>ERR_STATE_TRANSACTION</c>; an ETag mismatch is 500 over HTTP, as Dapr).</summary>
        Transaction,
    }

    public static StateApiError? FindStore(StateStoreSet stores, string? name, out EventualStore store)
    {
        store = stores.Find(name)!;
        return store is null ? StateApiError.StoreNotFound(name) : null;
    }

    public static StateApiError? Scope(StateStoreSet stores, string? key, out string scoped)
    {
        scoped = StateKeys.TryScope(stores.AppId, key, out string? error)!;
        return scoped is null ? StateApiError.Malformed(error!) : null;
    }

    public static StateApiError? Write(EventualStore store, IReadOnlyList<StateOperation> operations, WriteKind kind)
    {
        if (operations.Count == 0)
        {
            return null;
        }

        StateWriteResult result = store.Apply(operations);
        if (result.Status == StateWriteStatus.Applied)
        {
            return null;
        }

        string code = kind switch
        {
            WriteKind.Save => "ERR_STATE_SAVE",
            WriteKind.Delete => "ERR_STATE_DELETE",
            _ => "ERR_STATE_TRANSACTION",
        };
        string verb = kind switch
        {
            WriteKind.Save => "failed saving state in state store",
            WriteKind.Delete => "failed deleting state with key",
            _ => "error while executing state transaction:",
        };
        string key = result.Key is null ? string.Empty : StateKeys.Unscope(result.Key);
        string where = kind == WriteKind.Delete ? $"{key}" : store.Name;
        return result.Status switch
        {
            StateWriteStatus.ETagMismatch => new StateApiError(
                kind == WriteKind.Transaction ? 500 : 409, StatusCode.Aborted, code,
                $"{verb} {where}: possible etag mismatch. error from state store: ETag mismatch for key {key}"),
            StateWriteStatus.ETagInvalid => new StateApiError(
                kind == WriteKind.Transaction ? 500 : 400, StatusCode.InvalidArgument, code,
                $"{verb} {where}: invalid etag value: ETag for key {key} is not one this store issued"),
            _ => new StateApiError(
                500, StatusCode.ResourceExhausted, code,
                $"{verb} {where}: the state store is full ({store.Bytes} bytes held)"),
        };
    }
}
