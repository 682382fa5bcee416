using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Stack;

/// <summary>
/// Reassembles IPv4 fragments from the guest (RFC 791 §3.2, with the hole bookkeeping of RFC 815
/// kept as a sorted list of received pieces). Sans-IO: the caller passes <c>now</c> and calls
/// <see cref="Expire"/> when <see cref="NextDeadline"/> comes.
/// </summary>
/// <remarks>
/// <para>
/// Fragments are keyed by (source, destination, protocol, identification), RFC 791's four fields.
/// A datagram that does not complete within <see cref="Timeout"/> of its first fragment is dropped.
/// </para>
/// <para>
/// Overlaps: a fragment that repeats an earlier one exactly (same offset, length and bytes) is a
/// retransmission and is ignored; any other overlap, or a disagreement about where the datagram
/// ends, discards the whole datagram and every later fragment of it until its timeout, as RFC 5722
/// requires for IPv6: a receiver that let later bytes win would let a crafted fragment rewrite a
/// header that was already checked.
/// </para>
/// <para>
/// Memory: every stored fragment is charged its payload plus <see cref="FragmentOverhead"/>, every
/// datagram <see cref="DatagramOverhead"/>. A source may hold <see cref="MaxBytesPerSource"/>; past
/// that its new fragments are dropped. All sources together may hold <see cref="MaxBytesTotal"/>;
/// past that the oldest datagrams are dropped to make room. A datagram may have at most
/// <see cref="MaxFragmentsPerDatagram"/> pieces. Every drop is counted in <see cref="Counters"/>.
/// </para>
/// <para>
/// Buffer ownership: the reassembled datagram is written into a buffer the reassembler owns; the
/// span <see cref="Add"/> returns is valid until the next call.
/// </para>
/// </remarks>
internal sealed class Ipv4Reassembler
{
    /// <summary>Largest IPv4 datagram, header included (the total length field is 16 bits).</summary>
    public const int MaxDatagram = 65535;

    /// <summary>Bytes charged for a stored fragment besides its payload (list entry, array header).</summary>
    public const int FragmentOverhead = 64;

    /// <summary>Bytes charged for a datagram under reassembly (table entry, header copy).</summary>
    public const int DatagramOverhead = 256;

    private readonly Dictionary<Key, Datagram> _pending = new();
    private readonly LinkedList<Datagram> _byAge = new();
    private readonly Dictionary<uint, int> _bytesBySource = new();
    private readonly HashSet<Key> _discarded = new();
    private readonly Queue<(Key Key, TimeSpan Until)> _discardedByAge = new();
    private readonly byte[] _output = new byte[MaxDatagram];
    private int _bytesTotal;

    /// <summary>Creates a reassembler with the given limits.</summary>
    /// <param name="maxBytesPerSource">Memory one source address may hold; default 1 MiB.</param>
    /// <param name="maxBytesTotal">Memory all sources together may hold; default 4 MiB.</param>
    /// <param name="timeout">Time allowed from a datagram's first fragment to its last; default 30 s (Linux's ipfrag_time; RFC 791 suggests at least 15 s).</param>
    /// <param name="maxFragmentsPerDatagram">Pieces one datagram may be cut into; default 256 (a 64 KiB datagram at the 576-byte minimum MTU needs 115).</param>
    /// <param name="counters">Where to count; default a new instance.</param>
    public Ipv4Reassembler(int maxBytesPerSource = 1 << 20, int maxBytesTotal = 4 << 20, TimeSpan? timeout = null, int maxFragmentsPerDatagram = 256, ReassemblyCounters? counters = null)
    {
        Counters = counters ?? new ReassemblyCounters();
        MaxBytesPerSource = maxBytesPerSource;
        MaxBytesTotal = maxBytesTotal;
        Timeout = timeout ?? TimeSpan.FromSeconds(30);
        MaxFragmentsPerDatagram = maxFragmentsPerDatagram;
    }

    /// <summary>Memory one source address may hold.</summary>
    public int MaxBytesPerSource { get; }

    /// <summary>Memory all sources together may hold.</summary>
    public int MaxBytesTotal { get; }

    /// <summary>Time from a datagram's first fragment until it is dropped incomplete.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>Pieces one datagram may be cut into.</summary>
    public int MaxFragmentsPerDatagram { get; }

    /// <summary>What was reassembled and what was dropped, and why.</summary>
    public ReassemblyCounters Counters { get; }

    /// <summary>Memory charged right now, all sources together.</summary>
    public int BytesHeld => _bytesTotal;

    /// <summary>Datagrams under reassembly right now.</summary>
    public int PendingDatagrams => _pending.Count;

    /// <summary>When <see cref="Expire"/> next has something to do; null when nothing is pending.</summary>
    public TimeSpan? NextDeadline
    {
        get
        {
            TimeSpan? next = _byAge.First?.Value.Deadline;
            if (_discardedByAge.TryPeek(out var first) && (next is null || first.Until < next))
            {
                next = first.Until;
            }

            return next;
        }
    }

    /// <summary>
    /// Takes one fragment: a whole IPv4 packet whose header was already validated
    /// (<see cref="Ipv4Packet.TryCreate"/>, checksum) and trimmed to its total length.
    /// </summary>
    /// <param name="packet">The fragment, header included.</param>
    /// <param name="now">The current time.</param>
    /// <param name="datagram">On <see cref="ReassemblyOutcome.Complete"/>, the whole datagram (valid until the next call).</param>
    /// <returns>What became of the fragment.</returns>
    public ReassemblyOutcome Add(Span<byte> packet, TimeSpan now, out Span<byte> datagram)
    {
        datagram = default;
        Counters.Fragments++;
        Expire(now);
        if (packet.Length < Ipv4Packet.MinHeaderLength)
        {
            return Drop(ref Counters.Malformed);
        }

        // Checked here rather than by Ipv4Packet.TryCreate: a fragment's own total length is not trusted.
        var ip = Ipv4Packet.CreateUnchecked(packet);
        int headerLength = ip.HeaderLength;
        if (headerLength < Ipv4Packet.MinHeaderLength || headerLength > packet.Length)
        {
            return Drop(ref Counters.Malformed);
        }

        bool more = ip.MoreFragments;
        int offset = ip.FragmentOffset;
        ReadOnlySpan<byte> payload = packet[headerLength..];
        // RFC 791 §3.2: every fragment but the last carries a multiple of 8 octets; and no datagram
        // may end past 65535 octets (the "ping of death" overflow).
        if (payload.Length == 0 || (more && payload.Length % 8 != 0) || headerLength + offset + payload.Length > MaxDatagram)
        {
            return Drop(ref Counters.Malformed);
        }

        var key = new Key(ip.Source.Value, ip.Destination.Value, (byte)ip.Protocol, ip.Identification);
        if (_discarded.Contains(key))
        {
            return Drop(ref Counters.Overlaps);
        }

        if (!_pending.TryGetValue(key, out Datagram? d))
        {
            if (!Charge(key.Source, DatagramOverhead, null))
            {
                return Drop(ref Counters.LimitDrops);
            }

            d = new Datagram(key, now + Timeout) { Bytes = DatagramOverhead };
            d.Node = _byAge.AddLast(d);
            _pending.Add(key, d);
        }

        int end = offset + payload.Length;
        if (!more)
        {
            if ((d.PayloadLength >= 0 && d.PayloadLength != end) || (d.Pieces.Count > 0 && d.Pieces[^1].End > end))
            {
                return Discard(d, now);
            }
        }
        else if (d.PayloadLength >= 0 && end > d.PayloadLength)
        {
            return Discard(d, now);
        }

        int insertAt = d.Pieces.Count;
        for (int i = 0; i < d.Pieces.Count; i++)
        {
            Piece p = d.Pieces[i];
            if (p.Offset >= end)
            {
                insertAt = i;
                break;
            }

            if (p.End <= offset)
            {
                continue;
            }

            // Overlap: an exact repeat is a retransmission; anything else poisons the datagram.
            if (p.Offset == offset && p.Data.Length == payload.Length && payload.SequenceEqual(p.Data))
            {
                return Drop(ref Counters.Duplicates);
            }

            return Discard(d, now);
        }

        if (d.Pieces.Count >= MaxFragmentsPerDatagram)
        {
            Counters.LimitDrops++;
            Remove(d);
            return ReassemblyOutcome.Dropped;
        }

        int cost = FragmentOverhead + payload.Length;
        if (!Charge(key.Source, cost, d))
        {
            if (d.Pieces.Count == 0)
            {
                Remove(d);
            }

            return Drop(ref Counters.LimitDrops);
        }

        d.Bytes += cost;
        d.Pieces.Insert(insertAt, new Piece(offset, payload.ToArray()));
        if (!more)
        {
            d.PayloadLength = end;
        }

        if (offset == 0)
        {
            d.Header = packet[..headerLength].ToArray();
        }

        if (!IsComplete(d))
        {
            return ReassemblyOutcome.Pending;
        }

        int length = d.Header!.Length + d.PayloadLength;
        Span<byte> output = _output.AsSpan(0, length);
        d.Header.CopyTo(output);
        int at = d.Header.Length;
        foreach (Piece p in d.Pieces)
        {
            p.Data.CopyTo(output[at..]);
            at += p.Data.Length;
        }

        // The whole datagram: its own length, no fragment fields, a new header checksum.
        var whole = Ipv4Packet.CreateUnchecked(output);
        whole.TotalLength = (ushort)length;
        whole.DontFragment = false;
        whole.MoreFragments = false;
        whole.FragmentOffset = 0;
        whole.FillChecksum();
        Remove(d);
        Counters.Reassembled++;
        datagram = output;
        return ReassemblyOutcome.Complete;
    }

    /// <summary>Drops every datagram (and every discard record) whose time is up.</summary>
    /// <param name="now">The current time.</param>
    public void Expire(TimeSpan now)
    {
        while (_byAge.First is { } oldest && oldest.Value.Deadline <= now)
        {
            Counters.Timeouts++;
            Remove(oldest.Value);
        }

        while (_discardedByAge.TryPeek(out var first) && first.Until <= now)
        {
            _discardedByAge.Dequeue();
            _discarded.Remove(first.Key);
        }
    }

    private static bool IsComplete(Datagram d)
    {
        if (d.PayloadLength < 0 || d.Header is null)
        {
            return false;
        }

        int covered = 0;
        foreach (Piece p in d.Pieces)
        {
            if (p.Offset != covered)
            {
                return false;
            }

            covered = p.End;
        }

        return covered == d.PayloadLength;
    }

    private ReassemblyOutcome Drop(ref long counter)
    {
        counter++;
        return ReassemblyOutcome.Dropped;
    }

    /// <summary>RFC 5722's rule: the datagram and every fragment of it still to come are dropped.</summary>
    private ReassemblyOutcome Discard(Datagram d, TimeSpan now)
    {
        Counters.Overlaps++;
        Remove(d);
        // Remembered for one more timeout, bounded like the datagrams themselves.
        if (_discarded.Count < MaxBytesTotal / DatagramOverhead && _discarded.Add(d.Key))
        {
            _discardedByAge.Enqueue((d.Key, now + Timeout));
        }

        return ReassemblyOutcome.Dropped;
    }

    /// <summary>
    /// Charges <paramref name="cost"/> to <paramref name="source"/>: refused past the source's share;
    /// past the total, the oldest datagrams other than <paramref name="keep"/> are dropped first.
    /// </summary>
    private bool Charge(uint source, int cost, Datagram? keep)
    {
        _bytesBySource.TryGetValue(source, out int held);
        if (held + cost > MaxBytesPerSource)
        {
            return false;
        }

        while (_bytesTotal + cost > MaxBytesTotal)
        {
            Datagram? victim = _byAge.First?.Value;
            if (victim is null || ReferenceEquals(victim, keep))
            {
                victim = _byAge.First?.Next?.Value;
            }

            if (victim is null)
            {
                return false;
            }

            Counters.LimitDrops++;
            Remove(victim);
        }

        _bytesBySource[source] = _bytesBySource.GetValueOrDefault(source) + cost;
        _bytesTotal += cost;
        return true;
    }

    private void Uncharge(uint source, int cost)
    {
        int left = _bytesBySource[source] - cost;
        if (left == 0)
        {
            _bytesBySource.Remove(source);
        }
        else
        {
            _bytesBySource[source] = left;
        }

        _bytesTotal -= cost;
    }

    private void Remove(Datagram d)
    {
        if (!_pending.Remove(d.Key))
        {
            return;
        }

        _byAge.Remove(d.Node!);
        Uncharge(d.Key.Source, d.Bytes);
    }

    private readonly record struct Key(uint Source, uint Destination, byte Protocol, ushort Identification);

    private readonly record struct Piece(int Offset, byte[] Data)
    {
        public int End => Offset + Data.Length;
    }

    private sealed class Datagram(Key key, TimeSpan deadline)
    {
        public Key Key { get; } = key;

        public TimeSpan Deadline { get; } = deadline;

        public List<Piece> Pieces { get; } = [];

        /// <summary>Payload length, known once the last fragment (MF clear) arrived; -1 before.</summary>
        public int PayloadLength { get; set; } = -1;

        /// <summary>The header of the fragment at offset 0 (RFC 791: it becomes the datagram's header).</summary>
        public byte[]? Header { get; set; }

        /// <summary>Memory charged to this datagram.</summary>
        public int Bytes { get; set; }

        public LinkedListNode<Datagram>? Node { get; set; }
    }
}
