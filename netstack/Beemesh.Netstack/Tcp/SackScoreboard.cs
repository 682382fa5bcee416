using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tcp;

/// <summary>
/// Sender-side record of the sequence ranges the peer reported as SACKed (RFC 6675 §3),
/// kept sorted and merged in a fixed array allocated once per connection. When full, the
/// highest range is dropped: losing SACK information only costs a spurious retransmission.
/// </summary>
internal sealed class SackScoreboard
{
    // Allocated on the first SACK block: most connections never negotiate SACK (the NAT's flows
    // never do), and a burst leaves thousands of them in TIME-WAIT.
    private SackBlock[] _blocks = [];

    public int Count { get; private set; }

    public SackBlock this[int index] => _blocks[index];

    /// <summary>Right edge of the highest SACKed range; only meaningful when Count &gt; 0.</summary>
    public uint HighestSacked => _blocks[Count - 1].Right;

    public void Clear() => Count = 0;

    /// <summary>Adds [left, right), merging with overlapping or adjacent ranges.</summary>
    public void Add(uint left, uint right)
    {
        if (!TcpSeq.Lt(left, right))
        {
            return;
        }

        if (_blocks.Length == 0)
        {
            _blocks = new SackBlock[8];
        }

        int i = 0;
        while (i < Count && TcpSeq.Lt(_blocks[i].Right, left))
        {
            i++;
        }

        // Merge every range touching [left, right) into one, starting at index i.
        int j = i;
        while (j < Count && TcpSeq.Le(_blocks[j].Left, right))
        {
            left = TcpSeq.Min(left, _blocks[j].Left);
            right = TcpSeq.Max(right, _blocks[j].Right);
            j++;
        }

        int removed = j - i;
        if (removed == 0)
        {
            if (Count == _blocks.Length)
            {
                if (i == Count)
                {
                    return;
                }

                Count--;
            }

            Array.Copy(_blocks, i, _blocks, i + 1, Count - i);
            Count++;
        }
        else if (removed > 1)
        {
            Array.Copy(_blocks, j, _blocks, i + 1, Count - j);
            Count -= removed - 1;
        }

        _blocks[i] = new SackBlock(left, right);
    }

    /// <summary>Forgets everything below <paramref name="una"/> (cumulatively acknowledged).</summary>
    public void Prune(uint una)
    {
        int drop = 0;
        while (drop < Count && TcpSeq.Le(_blocks[drop].Right, una))
        {
            drop++;
        }

        if (drop > 0)
        {
            Array.Copy(_blocks, drop, _blocks, 0, Count - drop);
            Count -= drop;
        }

        if (Count > 0 && TcpSeq.Lt(_blocks[0].Left, una))
        {
            _blocks[0] = new SackBlock(una, _blocks[0].Right);
        }
    }

    /// <summary>If <paramref name="seq"/> lies in a SACKed range, returns that range's right edge, else <paramref name="seq"/>.</summary>
    public uint SkipSacked(uint seq)
    {
        for (int i = 0; i < Count; i++)
        {
            if (TcpSeq.Le(_blocks[i].Left, seq) && TcpSeq.Lt(seq, _blocks[i].Right))
            {
                return _blocks[i].Right;
            }
        }

        return seq;
    }

    /// <summary>Bytes SACKed in total.</summary>
    public long SackedBytes()
    {
        long sum = 0;
        for (int i = 0; i < Count; i++)
        {
            sum += TcpSeq.Diff(_blocks[i].Right, _blocks[i].Left);
        }

        return sum;
    }

    /// <summary>Bytes in [from, to) that are not SACKed.</summary>
    public long UnsackedBetween(uint from, uint to)
    {
        if (!TcpSeq.Lt(from, to))
        {
            return 0;
        }

        long total = TcpSeq.Diff(to, from);
        for (int i = 0; i < Count; i++)
        {
            uint l = TcpSeq.Max(_blocks[i].Left, from);
            uint r = TcpSeq.Min(_blocks[i].Right, to);
            if (TcpSeq.Lt(l, r))
            {
                total -= TcpSeq.Diff(r, l);
            }
        }

        return total;
    }

    /// <summary>First un-SACKed hole at or after <paramref name="from"/> that lies below the highest SACKed byte.</summary>
    public bool NextHole(uint from, out uint start, out uint end)
    {
        uint cur = from;
        for (int i = 0; i < Count; i++)
        {
            if (TcpSeq.Lt(cur, _blocks[i].Left))
            {
                start = cur;
                end = _blocks[i].Left;
                return true;
            }

            cur = TcpSeq.Max(cur, _blocks[i].Right);
        }

        start = end = 0;
        return false;
    }
}
