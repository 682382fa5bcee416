using System.Net;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.State.Strong;

/// <summary>What one replica of a strong store needs: where its group keeps its data, and its identity.</summary>
public sealed class StrongStoreOptions
{
    /// <summary>The Dapr store name.</summary>
    public required string Name { get; init; }

    /// <summary>
    /// The store's directory, shared by every replica of the workload on this node
    /// (<c>STATE/state/NAMESPACE/NAME/STORE</c>): one sub-directory per replica with its log, snapshots and members.
    /// </summary>
    public required string Directory { get; init; }

    /// <summary>The workload's SVIDs and bundles: presented to peers, and used to check them.</summary>
    public required X509Source Source { get; init; }

    /// <summary>The workload's identity: the only one a peer may have.</summary>
    public required SpiffeId Identity { get; init; }

    /// <summary>Logs.</summary>
    public required ILoggerFactory LoggerFactory { get; init; }

    /// <summary>The clock stamped into commands (TTL) and used for reads.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>How long a read or write may take before it fails with "unavailable". Default 5 s.</summary>
    public TimeSpan OperationTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long joining the group may take at start. Default 30 s.</summary>
    public TimeSpan JoinTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Raft's election timeout range, in milliseconds. Default 300-600.</summary>
    public (int Lower, int Upper) ElectionTimeout { get; init; } = (300, 600);

    /// <summary>Most bytes of keys and values the store holds. Default 256 MiB.</summary>
    public long MaxBytes { get; init; } = 256L * 1024 * 1024;

    /// <summary>The address this replica's Raft and forward endpoints listen on (<see cref="StrongStoreContext.ListenAddress"/>). Default: the loopback.</summary>
    public IPAddress ListenAddress { get; init; } = IPAddress.Loopback;

    /// <summary>
    /// How replicas on other nodes are found and reached (<see cref="StrongStoreContext.Mesh"/>);
    /// null when the group spans this node only. With it, the replicas listen on the node's own
    /// loopback address for the store (<see cref="StrongRelay.NodeAddress"/>) instead of 127.0.0.1.
    /// </summary>
    public Replicas.IReplicaMesh? Mesh { get; init; }

    /// <summary>
    /// The address the other replicas are given for an endpoint this replica listens on (its Raft
    /// endpoint, which is also its identity in the group, and its forward endpoint). Null: the
    /// endpoint itself. Tests set it to put a relay of their own between the replicas.
    /// </summary>
    internal Func<IPEndPoint, IPEndPoint>? Advertise { get; init; }
}
