using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Text;
using Beemesh.Overlay.Records;

namespace Beemesh.Overlay.Codec;

/// <summary>
/// The overlay wire format. A frame is a 4-byte big-endian length of what follows, a type byte and
/// the body; integers are big-endian. The first frame on a link is a Hello (node id, protocol
/// version). Every size is bounded and malformed input yields a <see cref="OverlayCodecError"/>,
/// never an exception.
/// </summary>
public static class OverlayCodec
{
    /// <summary>Largest frame after the length prefix (1 MiB).</summary>
    public const int MaxFrameLength = 1 << 20;

    /// <summary>Most peers in one message.</summary>
    public const int MaxPeers = 64;

    /// <summary>Most record ids in one message.</summary>
    public const int MaxIds = 4096;

    /// <summary>Appends the frame of <paramref name="message"/> to <paramref name="writer"/>.</summary>
    public static void WriteFrame(IBufferWriter<byte> writer, OverlayMessage message)
    {
        ArgumentNullException.ThrowIfNull(writer);
        byte[] frame = Encode(message);
        frame.CopyTo(writer.GetSpan(frame.Length));
        writer.Advance(frame.Length);
    }

    /// <summary>The frame of <paramref name="message"/>, length prefix included.</summary>
    public static byte[] Encode(OverlayMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var w = new Writer();
        w.U32(0);
        w.U8((byte)message.Type);
        switch (message.Type)
        {
            case OverlayMessageType.Hello:
                w.Peer(message.Peer);
                w.U16((ushort)message.Ttl);
                break;
            case OverlayMessageType.Join or OverlayMessageType.ProbeRequest or OverlayMessageType.Probe
                or OverlayMessageType.ProbeAck or OverlayMessageType.ProbeResult:
                w.Peer(message.Peer);
                break;
            case OverlayMessageType.ForwardJoin:
                w.Peer(message.Peer);
                w.U8((byte)message.Ttl);
                break;
            case OverlayMessageType.Shuffle:
                w.Peer(message.Peer);
                w.U8((byte)message.Ttl);
                w.Peers(message.Peers);
                break;
            case OverlayMessageType.Neighbor or OverlayMessageType.NeighborReply:
                w.Peer(message.Peer);
                w.U8(message.Flag ? (byte)1 : (byte)0);
                break;
            case OverlayMessageType.JoinReply or OverlayMessageType.ShuffleReply:
                w.Peers(message.Peers);
                break;
            case OverlayMessageType.Gossip:
                w.U8(message.Flag ? (byte)1 : (byte)0);
                w.Record(message.Record ?? throw new ArgumentException("a Gossip message needs a record", nameof(message)), true);
                break;
            case OverlayMessageType.IHave or OverlayMessageType.Graft or OverlayMessageType.Digest or OverlayMessageType.Want:
                if (message.Ids.Length > MaxIds)
                {
                    throw new ArgumentException($"at most {MaxIds} ids per message", nameof(message));
                }

                w.U16((ushort)message.Ids.Length);
                foreach (RecordId id in message.Ids)
                {
                    w.Id(id);
                }

                break;
            default:
                break;
        }

        byte[] frame = w.ToArray();
        if (frame.Length - 4 > MaxFrameLength)
        {
            throw new ArgumentException("message exceeds the frame limit", nameof(message));
        }

        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)(frame.Length - 4));
        return frame;
    }

    /// <summary>The bytes a record's signature covers: its wire form without the signature.</summary>
    public static byte[] EncodeRecordBody(OverlayRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var w = new Writer();
        w.Record(record, false);
        return w.ToArray();
    }

    /// <summary>
    /// Decodes the frame at the start of <paramref name="buffer"/>. <paramref name="consumed"/> is
    /// the frame's whole length when complete or malformed with a known length, else 0.
    /// </summary>
    public static FrameStatus TryReadFrame(ReadOnlySpan<byte> buffer, out OverlayMessage? message, out int consumed, out OverlayCodecError error)
    {
        message = null;
        consumed = 0;
        error = OverlayCodecError.None;
        if (buffer.Length < 4)
        {
            return FrameStatus.Incomplete;
        }

        uint length = BinaryPrimitives.ReadUInt32BigEndian(buffer);
        if (length == 0 || length > MaxFrameLength)
        {
            error = OverlayCodecError.BadLength;
            return FrameStatus.Malformed;
        }

        if (buffer.Length - 4 < length)
        {
            return FrameStatus.Incomplete;
        }

        consumed = 4 + (int)length;
        var r = new Reader(buffer.Slice(4, (int)length));
        message = Decode(ref r);
        if (r.Error == OverlayCodecError.None && r.Remaining > 0)
        {
            r.Fail(OverlayCodecError.TrailingBytes);
        }

        if (r.Error != OverlayCodecError.None)
        {
            message = null;
            error = r.Error;
            return FrameStatus.Malformed;
        }

        return FrameStatus.Complete;
    }

    /// <summary>
    /// Decodes a link's first frame, which must be a Hello of <see cref="OverlayNode.ProtocolVersion"/>;
    /// on success <paramref name="peer"/> is the sender.
    /// </summary>
    public static FrameStatus TryReadHello(ReadOnlySpan<byte> buffer, out PeerAddress peer, out int consumed, out OverlayCodecError error)
    {
        peer = default;
        FrameStatus status = TryReadFrame(buffer, out OverlayMessage? message, out consumed, out error);
        if (status != FrameStatus.Complete)
        {
            return status;
        }

        if (message!.Type != OverlayMessageType.Hello)
        {
            error = OverlayCodecError.HelloExpected;
            return FrameStatus.Malformed;
        }

        if (message.Ttl != OverlayNode.ProtocolVersion)
        {
            error = OverlayCodecError.UnsupportedVersion;
            return FrameStatus.Malformed;
        }

        peer = message.Peer;
        return FrameStatus.Complete;
    }

    private static OverlayMessage? Decode(ref Reader r)
    {
        byte typeByte = r.U8();
        if (r.Error != OverlayCodecError.None)
        {
            return null;
        }

        var type = (OverlayMessageType)typeByte;
        switch (type)
        {
            case OverlayMessageType.Hello:
                {
                    PeerAddress peer = r.Peer();
                    int version = r.U16();
                    return new OverlayMessage(type, peer, version);
                }

            case OverlayMessageType.Join or OverlayMessageType.ProbeRequest or OverlayMessageType.Probe
                or OverlayMessageType.ProbeAck or OverlayMessageType.ProbeResult:
                return new OverlayMessage(type, r.Peer());
            case OverlayMessageType.ForwardJoin:
                {
                    PeerAddress peer = r.Peer();
                    return new OverlayMessage(type, peer, r.U8());
                }

            case OverlayMessageType.Shuffle:
                {
                    PeerAddress peer = r.Peer();
                    int ttl = r.U8();
                    return new OverlayMessage(type, peer, ttl, peers: r.Peers());
                }

            case OverlayMessageType.Neighbor or OverlayMessageType.NeighborReply:
                {
                    PeerAddress peer = r.Peer();
                    return new OverlayMessage(type, peer, flag: r.Flag());
                }

            case OverlayMessageType.JoinReply or OverlayMessageType.ShuffleReply:
                return new OverlayMessage(type, peers: r.Peers());
            case OverlayMessageType.Ping:
                return OverlayMessage.Ping;
            case OverlayMessageType.Prune:
                return OverlayMessage.Prune;
            case OverlayMessageType.Disconnect:
                return OverlayMessage.Disconnect;
            case OverlayMessageType.Gossip:
                {
                    bool repair = r.Flag();
                    OverlayRecord? record = r.Record();
                    return record is null ? null : OverlayMessage.Gossip(record, repair);
                }

            case OverlayMessageType.IHave or OverlayMessageType.Graft or OverlayMessageType.Digest or OverlayMessageType.Want:
                {
                    int count = r.U16();
                    if (count > MaxIds)
                    {
                        r.Fail(OverlayCodecError.FieldTooLarge);
                        return null;
                    }

                    var ids = new RecordId[count];
                    for (int i = 0; i < count && r.Error == OverlayCodecError.None; i++)
                    {
                        ids[i] = r.Id();
                    }

                    return new OverlayMessage(type, ids: ids);
                }

            default:
                r.Fail(OverlayCodecError.UnknownType);
                return null;
        }
    }

    private sealed class Writer
    {
        private readonly ArrayBufferWriter<byte> _buffer = new(64);

        public byte[] ToArray() => _buffer.WrittenSpan.ToArray();

        public void U8(byte v)
        {
            _buffer.GetSpan(1)[0] = v;
            _buffer.Advance(1);
        }

        public void U16(ushort v)
        {
            BinaryPrimitives.WriteUInt16BigEndian(_buffer.GetSpan(2), v);
            _buffer.Advance(2);
        }

        public void U32(uint v)
        {
            BinaryPrimitives.WriteUInt32BigEndian(_buffer.GetSpan(4), v);
            _buffer.Advance(4);
        }

        public void I32(int v) => U32((uint)v);

        public void U64(ulong v)
        {
            BinaryPrimitives.WriteUInt64BigEndian(_buffer.GetSpan(8), v);
            _buffer.Advance(8);
        }

        public void I64(long v) => U64((ulong)v);

        public void Bytes(ReadOnlySpan<byte> v) => _buffer.Write(v);

        public void Peer(PeerAddress p)
        {
            U64(p.Id);
            if (p.EndPoint is null)
            {
                U8(0);
                return;
            }

            byte[] address = p.EndPoint.Address.GetAddressBytes();
            U8(address.Length == 4 ? (byte)4 : (byte)6);
            Bytes(address);
            U16((ushort)p.EndPoint.Port);
        }

        public void Peers(PeerAddress[] peers)
        {
            if (peers.Length > MaxPeers)
            {
                throw new ArgumentException($"at most {MaxPeers} peers per message");
            }

            U8((byte)peers.Length);
            foreach (PeerAddress p in peers)
            {
                Peer(p);
            }
        }

        public void Key(string key)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(key);
            if (bytes.Length > OverlayRecord.MaxKeyLength)
            {
                throw new ArgumentException($"record key longer than {OverlayRecord.MaxKeyLength} bytes");
            }

            U16((ushort)bytes.Length);
            Bytes(bytes);
        }

        public void Version(RecordVersion v)
        {
            I64(v.Time.Physical);
            I32(v.Time.Logical);
            U64(v.Origin);
        }

        public void Id(RecordId id)
        {
            U8((byte)id.Slot.Kind);
            Key(id.Slot.Key);
            Version(id.Version);
        }

        public void Record(OverlayRecord record, bool withSignature)
        {
            if (record.Payload.Length > OverlayRecord.MaxPayloadLength || record.Signature.Length > OverlayRecord.MaxSignatureLength)
            {
                throw new ArgumentException("record payload or signature too large");
            }

            U8((byte)record.Kind);
            Key(record.Key);
            U64(record.Subject);
            Version(record.Version);
            I64(record.ExpiresAt);
            U8(record.Tombstone ? (byte)1 : (byte)0);
            U32((uint)record.Payload.Length);
            Bytes(record.Payload.Span);
            if (withSignature)
            {
                U16((ushort)record.Signature.Length);
                Bytes(record.Signature);
            }
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _position;

        public OverlayCodecError Error { get; private set; }

        public readonly int Remaining => _data.Length - _position;

        public void Fail(OverlayCodecError error)
        {
            if (Error == OverlayCodecError.None)
            {
                Error = error;
            }
        }

        private ReadOnlySpan<byte> Take(int n)
        {
            if (Error != OverlayCodecError.None || n < 0 || Remaining < n)
            {
                Fail(OverlayCodecError.Truncated);
                return default;
            }

            ReadOnlySpan<byte> s = _data.Slice(_position, n);
            _position += n;
            return s;
        }

        public byte U8()
        {
            ReadOnlySpan<byte> s = Take(1);
            return s.IsEmpty ? (byte)0 : s[0];
        }

        public ushort U16()
        {
            ReadOnlySpan<byte> s = Take(2);
            return s.IsEmpty ? (ushort)0 : BinaryPrimitives.ReadUInt16BigEndian(s);
        }

        public uint U32()
        {
            ReadOnlySpan<byte> s = Take(4);
            return s.IsEmpty ? 0 : BinaryPrimitives.ReadUInt32BigEndian(s);
        }

        public ulong U64()
        {
            ReadOnlySpan<byte> s = Take(8);
            return s.IsEmpty ? 0 : BinaryPrimitives.ReadUInt64BigEndian(s);
        }

        public bool Flag()
        {
            byte b = U8();
            if (b > 1)
            {
                Fail(OverlayCodecError.BadField);
            }

            return b == 1;
        }

        public PeerAddress Peer()
        {
            ulong id = U64();
            byte family = U8();
            switch (family)
            {
                case 0:
                    return new PeerAddress(id);
                case 4 or 6:
                    {
                        ReadOnlySpan<byte> address = Take(family == 4 ? 4 : 16);
                        ushort port = U16();
                        return Error != OverlayCodecError.None ? default : new PeerAddress(id, new IPEndPoint(new IPAddress(address), port));
                    }

                default:
                    Fail(OverlayCodecError.BadField);
                    return default;
            }
        }

        public PeerAddress[] Peers()
        {
            int count = U8();
            if (count > MaxPeers)
            {
                Fail(OverlayCodecError.FieldTooLarge);
                return [];
            }

            var peers = new PeerAddress[count];
            for (int i = 0; i < count && Error == OverlayCodecError.None; i++)
            {
                peers[i] = Peer();
            }

            return peers;
        }

        private RecordKind Kind()
        {
            byte k = U8();
            if (k is < (byte)RecordKind.Node or > (byte)RecordKind.Revocation)
            {
                Fail(OverlayCodecError.BadField);
            }

            return (RecordKind)k;
        }

        private string Key()
        {
            int length = U16();
            if (length > OverlayRecord.MaxKeyLength)
            {
                Fail(OverlayCodecError.FieldTooLarge);
                return "";
            }

            ReadOnlySpan<byte> bytes = Take(length);
            if (Error != OverlayCodecError.None)
            {
                return "";
            }

            try
            {
                return StrictUtf8.GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                Fail(OverlayCodecError.BadField);
                return "";
            }
        }

        private RecordVersion Version()
        {
            long physical = (long)U64();
            int logical = (int)U32();
            ulong origin = U64();
            return new RecordVersion(new HlcTimestamp(physical, logical), origin);
        }

        public RecordId Id()
        {
            RecordKind kind = Kind();
            string key = Key();
            return new RecordId(new RecordSlot(kind, key), Version());
        }

        public OverlayRecord? Record()
        {
            RecordKind kind = Kind();
            string key = Key();
            ulong subject = U64();
            RecordVersion version = Version();
            long expires = (long)U64();
            bool tombstone = Flag();
            uint payloadLength = U32();
            if (payloadLength > OverlayRecord.MaxPayloadLength)
            {
                Fail(OverlayCodecError.FieldTooLarge);
                return null;
            }

            byte[] payload = Take((int)payloadLength).ToArray();
            int signatureLength = U16();
            if (signatureLength > OverlayRecord.MaxSignatureLength)
            {
                Fail(OverlayCodecError.FieldTooLarge);
                return null;
            }

            byte[] signature = Take(signatureLength).ToArray();
            return Error != OverlayCodecError.None ? null : new OverlayRecord(kind, key, subject, version, expires, tombstone, payload, signature);
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);
}
