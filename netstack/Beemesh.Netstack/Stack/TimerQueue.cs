namespace Beemesh.Netstack.Stack;

/// <summary>
/// The event loop's timers: at most one pending deadline per handler, in a binary min-heap that
/// knows where each handler sits, so a handler's timer can be moved or cancelled in O(log n).
/// A flow that is removed cancels its timer: nothing it scheduled (a keepalive a minute out, an
/// RTO) keeps it reachable after it is gone, and the heap holds one entry per live handler at most.
/// </summary>
/// <remarks>
/// Scheduling keeps the earlier of the queued and the new deadline: a handler re-arms for its next
/// deadline when the timer fires (see <see cref="IEventHandler.OnTimer"/>). The arrays shrink again
/// when the entry count falls to a quarter of their size, so a burst does not leave them at their peak.
/// Not thread-safe: the loop thread only.
/// </remarks>
internal sealed class TimerQueue
{
    private const int MinCapacity = 16;

    private Entry[] _heap = new Entry[MinCapacity];
    private Dictionary<IEventHandler, int> _index = new(ReferenceEqualityComparer.Instance);
    private int _count;

    /// <summary>Handlers with a pending timer.</summary>
    public int Count => _count;

    /// <summary>Slots allocated for entries (for tests and diagnostics: it follows the count down).</summary>
    public int Capacity => _heap.Length;

    /// <summary>Arms <paramref name="handler"/> at <paramref name="deadline"/>, or earlier if it already waits for an earlier one.</summary>
    public void Schedule(IEventHandler handler, TimeSpan deadline)
    {
        if (_index.TryGetValue(handler, out int i))
        {
            if (deadline < _heap[i].Deadline)
            {
                _heap[i].Deadline = deadline;
                SiftUp(i);
            }

            return;
        }

        if (_count == _heap.Length)
        {
            Array.Resize(ref _heap, _heap.Length * 2);
        }

        _heap[_count] = new Entry(deadline, handler);
        _index[handler] = _count;
        _count++;
        SiftUp(_count - 1);
    }

    /// <summary>Removes the handler's pending timer; false when it had none.</summary>
    public bool Cancel(IEventHandler handler)
    {
        if (!_index.Remove(handler, out int i))
        {
            return false;
        }

        RemoveAt(i);
        return true;
    }

    /// <summary>The deadline the handler waits for, or null.</summary>
    public TimeSpan? DeadlineOf(IEventHandler handler) => _index.TryGetValue(handler, out int i) ? _heap[i].Deadline : null;

    /// <summary>The earliest pending deadline.</summary>
    public bool TryPeek(out TimeSpan deadline)
    {
        if (_count == 0)
        {
            deadline = default;
            return false;
        }

        deadline = _heap[0].Deadline;
        return true;
    }

    /// <summary>Takes the earliest timer if it is due at <paramref name="now"/>.</summary>
    public bool TryTakeDue(TimeSpan now, out IEventHandler handler)
    {
        if (_count == 0 || _heap[0].Deadline > now)
        {
            handler = null!;
            return false;
        }

        handler = _heap[0].Handler;
        _index.Remove(handler);
        RemoveAt(0);
        return true;
    }

    private void RemoveAt(int i)
    {
        _count--;
        if (i != _count)
        {
            Entry last = _heap[_count];
            _heap[i] = last;
            _index[last.Handler] = i;
            if (i > 0 && last.Deadline < _heap[Parent(i)].Deadline)
            {
                SiftUp(i);
            }
            else
            {
                SiftDown(i);
            }
        }

        _heap[_count] = default;
        ShrinkIfSparse();
    }

    private void ShrinkIfSparse()
    {
        if (_heap.Length > MinCapacity && _count <= _heap.Length / 4)
        {
            Array.Resize(ref _heap, Math.Max(MinCapacity, _heap.Length / 2));
            if (_index.Capacity > 4 * Math.Max(MinCapacity, _count))
            {
                // Dictionary never gives its buckets back by itself.
                var index = new Dictionary<IEventHandler, int>(_index, ReferenceEqualityComparer.Instance);
                _index = index;
            }
        }
    }

    private void SiftUp(int i)
    {
        Entry e = _heap[i];
        while (i > 0)
        {
            int p = Parent(i);
            if (_heap[p].Deadline <= e.Deadline)
            {
                break;
            }

            _heap[i] = _heap[p];
            _index[_heap[i].Handler] = i;
            i = p;
        }

        _heap[i] = e;
        _index[e.Handler] = i;
    }

    private void SiftDown(int i)
    {
        Entry e = _heap[i];
        while (true)
        {
            int c = (2 * i) + 1;
            if (c >= _count)
            {
                break;
            }

            if (c + 1 < _count && _heap[c + 1].Deadline < _heap[c].Deadline)
            {
                c++;
            }

            if (e.Deadline <= _heap[c].Deadline)
            {
                break;
            }

            _heap[i] = _heap[c];
            _index[_heap[i].Handler] = i;
            i = c;
        }

        _heap[i] = e;
        _index[e.Handler] = i;
    }

    private static int Parent(int i) => (i - 1) / 2;

    private struct Entry(TimeSpan deadline, IEventHandler handler)
    {
        public TimeSpan Deadline = deadline;
        public readonly IEventHandler Handler = handler;
    }
}
