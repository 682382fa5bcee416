namespace Beemesh.Sidecar.State.Strong;

/// <summary>
/// The frames replicas of a strong store exchange over their mutual-TLS forward connection: a
/// follower sends a client's request to the leader, a joining replica asks the leader to add it.
/// Framed as <see cref="Replicas.ReplicaFrame"/>: a 32-bit little-endian length, a kind byte, then the body.
/// </summary>
internal static class ForwardFrame
{
    /// <summary>Largest frame: a request carries at most one state API request (4 MiB) plus framing.</summary>
    public const int MaxBytes = StateApiLimits.MaxRequestBytes + (64 * 1024);

    /// <summary>Request: one encoded <c>StrongCommand</c>.</summary>
    public const byte Write = 1;

    /// <summary>Request: a count, then that many scoped keys.</summary>
    public const byte Read = 2;

    /// <summary>Request: add the Raft endpoint in the body to the group.</summary>
    public const byte Join = 3;

    /// <summary>Request: remove the Raft endpoint in the body from the group.</summary>
    public const byte Leave = 4;

    /// <summary>
    /// Request from a replica of another node, through this node's tunnel port: add the Raft
    /// endpoint in the body to the group, asking the leader when this replica does not lead.
    /// </summary>
    public const byte JoinVia = 5;

    /// <summary>Response: done; the body is the answer.</summary>
    public const byte Ok = 100;

    /// <summary>Response: this replica is not the leader (any more); ask again.</summary>
    public const byte NotLeader = 101;

    /// <summary>Response: the leader could not do it in time; the body is the reason (UTF-8).</summary>
    public const byte Unavailable = 102;
}
