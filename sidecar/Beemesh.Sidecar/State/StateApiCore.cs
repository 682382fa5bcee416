using Beemesh.State.Api;
using Beemesh.Sidecar.State.Strong;
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

    public static StateApiError? FindStore(StateStoreSet stores, string? name, out IStateStore store)
    {
        store = stores.Find(name)!;
        return store is null ? StateApiError.StoreNotFound(name) : null;
    }

    /// <summary>Reads <paramref name="scopedKeys"/>; a strong store without quorum gives <paramref name="code"/> (500, gRPC UNAVAILABLE).</summary>
    public static async Task<(StateValue?[]? Values, StateApiError? Error)> ReadAsync(IStateStore store, IReadOnlyList<string> scopedKeys, string code, CancellationToken cancellationToken)
    {
        try
        {
            return (await store.GetAsync(scopedKeys, cancellationToken).ConfigureAwait(false), null);
        }
        catch (StrongStoreUnavailableException e)
        {
            return (null, Unavailable(code, e));
        }
    }

    private static StateApiError Unavailable(string code, StrongStoreUnavailableException e) =>
        new(500, StatusCode.Unavailable, code, $"state store unavailable: {e.Message}");

    public static StateApiError? Scope(StateStoreSet stores, string? key, out string scoped)
    {
        scoped = StateKeys.TryScope(stores.AppId, key, out string? error)!;
        return scoped is null ? StateApiError.Malformed(error!) : null;
    }

    public static async Task<StateApiError?> WriteAsync(IStateStore store, IReadOnlyList<StateOperation> operations, WriteKind kind, CancellationToken cancellationToken)
    {
        if (operations.Count == 0)
        {
            return null;
        }

        StateWriteResult result;
        try
        {
            result = await store.WriteAsync(operations, cancellationToken).ConfigureAwait(false);
        }
        catch (StrongStoreUnavailableException e)
        {
            return Unavailable(kind switch
            {
                WriteKind.Save => "ERR_STATE_SAVE",
                WriteKind.Delete => "ERR_STATE_DELETE",
                _ => "ERR_STATE_TRANSACTION",
            }, e);
        }
        catch (Eventual.EventualJournalException e)
        {
            string failed = kind switch
            {
                WriteKind.Save => "ERR_STATE_SAVE",
                WriteKind.Delete => "ERR_STATE_DELETE",
                _ => "ERR_STATE_TRANSACTION",
            };
            return new StateApiError(500, StatusCode.Internal, failed, $"state store {store.Name}: the write is not on disk: {e.Message}");
        }

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
