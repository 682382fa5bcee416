using Beemesh.Overlay.Records;

namespace Beemesh.Overlay;

/// <summary>
/// One overlay message. A single immutable shape serves every type (unused fields stay empty), so
/// the codec and the simulator handle one class and messages without content are shared instances.
/// The sender is not part of the message: the host knows which link it came from.
/// </summary>
public sealed class OverlayMessage
{
    /// <summary>Keepalive (shared instance).</summary>
    public static readonly OverlayMessage Ping = new(OverlayMessageType.Ping);

    /// <summary>PRUNE (shared instance).</summary>
    public static readonly OverlayMessage Prune = new(OverlayMessageType.Prune);

    /// <summary>DISCONNECT (shared instance).</summary>
    public static readonly OverlayMessage Disconnect = new(OverlayMessageType.Disconnect);

    /// <summary>Creates a message; see the factory methods for the fields each type uses.</summary>
    public OverlayMessage(
        OverlayMessageType type, PeerAddress peer = default, int ttl = 0, bool flag = false,
        PeerAddress[]? peers = null, OverlayRecord? record = null, RecordId[]? ids = null)
    {
        Type = type;
        Peer = peer;
        Ttl = ttl;
        Flag = flag;
        Peers = peers ?? [];
        Record = record;
        Ids = ids ?? [];
    }

    /// <summary>The message type.</summary>
    public OverlayMessageType Type { get; }

    /// <summary>The peer the message speaks of: the joining node, a probe's target or requester, a shuffle's origin, a Hello's sender.</summary>
    public PeerAddress Peer { get; }

    /// <summary>Remaining hops of a random walk (FORWARD_JOIN, SHUFFLE) or, in Hello, the protocol version.</summary>
    public int Ttl { get; }

    /// <summary>NEIGHBOR: high priority. NEIGHBOR reply: accepted. GOSSIP: repair (anti-entropy) rather than tree push.</summary>
    public bool Flag { get; }

    /// <summary>SHUFFLE, its reply and JOIN reply: a sample of peers.</summary>
    public PeerAddress[] Peers { get; }

    /// <summary>GOSSIP: the record.</summary>
    public OverlayRecord? Record { get; }

    /// <summary>IHAVE, GRAFT, DIGEST, WANT: record ids.</summary>
    public RecordId[] Ids { get; }

    /// <summary>True for GOSSIP, the one type that carries a record's payload.</summary>
    public bool IsPayload => Type == OverlayMessageType.Gossip;

    /// <summary>Hello: the first frame on a link.</summary>
    public static OverlayMessage Hello(PeerAddress self, int protocolVersion) => new(OverlayMessageType.Hello, self, protocolVersion);

    /// <summary>GOSSIP of <paramref name="record"/>; <paramref name="repair"/> for anti-entropy transfers.</summary>
    public static OverlayMessage Gossip(OverlayRecord record, bool repair = false) => new(OverlayMessageType.Gossip, record: record, flag: repair);

    /// <inheritdoc />
    public override string ToString() => Type switch
    {
        OverlayMessageType.Gossip => $"Gossip({Record}{(Flag ? ", repair" : "")})",
        OverlayMessageType.IHave or OverlayMessageType.Graft or OverlayMessageType.Digest or OverlayMessageType.Want => $"{Type}({Ids.Length} ids)",
        _ => $"{Type}({Peer}, ttl {Ttl}, {Peers.Length} peers)",
    };
}
