using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Tcp;

/// <summary>In-memory send source: appended bytes stay until discarded; counts what was discarded.</summary>
internal sealed class MemorySendSource : ITcpSendSource
{
    private byte[] _buffer = new byte[1024];
    private int _head;
    private int _tail;

    public long TotalAppended { get; private set; }
    public long TotalDiscarded { get; private set; }
    public long Available => _tail - _head;

    public void Append(ReadOnlySpan<byte> data)
    {
        if (_tail + data.Length > _buffer.Length)
        {
            int live = _tail - _head;
            var next = new byte[Math.Max(_buffer.Length, (live + data.Length) * 2)];
            _buffer.AsSpan(_head, live).CopyTo(next);
            _buffer = next;
            _head = 0;
            _tail = live;
        }

        data.CopyTo(_buffer.AsSpan(_tail));
        _tail += data.Length;
        TotalAppended += data.Length;
    }

    public int Peek(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset > Available)
        {
            throw new InvalidOperationException($"peek at {offset} beyond {Available}");
        }

        int n = (int)Math.Min(destination.Length, Available - offset);
        _buffer.AsSpan(_head + (int)offset, n).CopyTo(destination);
        return n;
    }

    public void Discard(long count)
    {
        if (count < 0 || count > Available)
        {
            throw new InvalidOperationException($"discard {count} of {Available}");
        }

        _head += (int)count;
        TotalDiscarded += count;
    }
}

/// <summary>In-memory sink with a capacity; the "application" drains it explicitly.</summary>
internal sealed class MemoryReceiveSink : ITcpReceiveSink
{
    private readonly List<byte> _all = new();

    public MemoryReceiveSink(long capacity) => Capacity = capacity;

    public long Capacity { get; set; }
    public long Buffered { get; private set; }
    public List<byte> All => _all;
    public long FreeSpace => Math.Max(0, Capacity - Buffered);

    public int Write(ReadOnlySpan<byte> data)
    {
        int n = (int)Math.Min(data.Length, FreeSpace);
        for (int i = 0; i < n; i++)
        {
            _all.Add(data[i]);
        }

        Buffered += n;
        return n;
    }

    public void Drain(long count) => Buffered = Math.Max(0, Buffered - count);

    public void DrainAll() => Buffered = 0;
}

/// <summary>One segment as emitted, with its payload copied out of the source at write time.</summary>
internal sealed record SentSegment(TcpSegmentInfo Info, byte[] Payload, TimeSpan At)
{
    public TcpFlags Flags => Info.Flags;
    public bool Has(TcpFlags f) => (Info.Flags & f) == f;
    public uint Seq => Info.Seq;
    public uint Ack => Info.Ack;
    public int Length => Info.PayloadLength;
}

/// <summary>Records every segment a connection writes.</summary>
internal sealed class RecordingWriter : ITcpSegmentWriter
{
    private readonly ITcpSendSource _source;

    public RecordingWriter(ITcpSendSource source) => _source = source;

    public List<SentSegment> Segments { get; } = new();
    public TimeSpan Now { get; set; }
    public Action<SentSegment>? OnWrite { get; set; }

    public void Write(in TcpSegmentInfo segment, long sourceOffset)
    {
        var payload = new byte[segment.PayloadLength];
        if (payload.Length > 0)
        {
            int n = _source.Peek(sourceOffset, payload);
            if (n != payload.Length)
            {
                throw new InvalidOperationException($"segment of {payload.Length} bytes but source had {n} at {sourceOffset}");
            }
        }

        var s = new SentSegment(segment, payload, Now);
        Segments.Add(s);
        OnWrite?.Invoke(s);
    }

    public SentSegment Last => Segments[^1];

    public List<SentSegment> Take()
    {
        var l = new List<SentSegment>(Segments);
        Segments.Clear();
        return l;
    }
}
