using Beemesh.State.Api;

namespace Beemesh.Sidecar.State;

/// <summary>
/// One Dapr state store as the HTTP and gRPC front ends see it: eventual (local, answers at once)
/// or strong (a Raft group; may fail with <see cref="Strong.StrongStoreUnavailableException"/>).
/// </summary>
public interface IStateStore
{
    /// <summary>The store name.</summary>
    string Name { get; }

    /// <summary>Bytes held, for the "store full" message.</summary>
    long Bytes { get; }

    /// <summary>The values of <paramref name="scopedKeys"/>, null where absent.</summary>
    Task<StateValue?[]> GetAsync(IReadOnlyList<string> scopedKeys, CancellationToken cancellationToken);

    /// <summary>Applies <paramref name="operations"/> all or none.</summary>
    Task<StateWriteResult> WriteAsync(IReadOnlyList<StateOperation> operations, CancellationToken cancellationToken);
}
