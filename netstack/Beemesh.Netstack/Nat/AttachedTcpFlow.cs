using Beemesh.Netstack.Forwarding;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Nat;

/// <summary>
/// One guest TCP connection attached to an in-process <see cref="GuestFlowStream"/> instead of a
/// host socket. The stream's send buffer is the connection's send source (bytes are dropped when
/// the guest ACKs them) and its read buffer is the receive sink (bytes are ACKed once the buffer
/// took them; the advertised window is its free space). The other side of the stream wakes the
/// flow through one coalesced post to the loop per batch of changes (<see cref="OnKick"/>).
/// Loop thread only, apart from the stream's own locking.
/// </summary>
internal sealed class AttachedTcpFlow : ITcpFlow, ITcpSendSource, ITcpReceiveSink
{
    private readonly NetworkStack _stack;
    private readonly Action _onKick;
    private readonly TcpConnection _connection;
    private readonly GuestSegmentWriter _writer;
    private TimeSpan? _scheduled;
    private bool _dirty;
    private bool _closeSent;
    private bool _removed;
    private bool _disposed;

    private AttachedTcpFlow(NetworkStack stack, FlowKey key, bool inbound)
    {
        _stack = stack;
        Inbound = inbound;
        _onKick = OnKick;
        Stream = new GuestFlowStream(static s => ((AttachedTcpFlow)s.Owner!).Kick()) { Owner = this };
        _writer = new GuestSegmentWriter(stack, key, this);
        _connection = new TcpConnection(stack.CreateTcpOptions(IpAddr.IsV4(key.GuestAddress)), this, this, stack.InitialSequenceNumber(key));
    }

    /// <inheritdoc />
    public FlowKey Key => _writer.Key; // kept once per flow, in the frame builder

    /// <summary>Opened into the guest (the inbound path) rather than by a guest SYN.</summary>
    public bool Inbound { get; }

    /// <summary>The stream the other side reads and writes.</summary>
    public GuestFlowStream Stream { get; }

    /// <inheritdoc />
    public TcpState State => _connection.State;

    /// <inheritdoc />
    public bool IsFinished => _disposed || _connection.State is TcpState.TimeWait or TcpState.Closed;

    /// <summary>Answers a guest SYN (the outbound path); the caller adds the flow to the table.</summary>
    public static AttachedTcpFlow AcceptSyn(NetworkStack stack, FlowKey key, in TcpSegmentInfo syn)
    {
        var flow = new AttachedTcpFlow(stack, key, inbound: false);
        flow._writer.LearnPeerMss(syn);
        flow._connection.AcceptSyn(syn, stack.Now, flow._writer);
        flow.AfterCall();
        return flow;
    }

    /// <summary>Sends a SYN into the guest (the inbound path) and adds the flow; null when the table refuses it.</summary>
    public static AttachedTcpFlow? Connect(NetworkStack stack, FlowKey key)
    {
        var flow = new AttachedTcpFlow(stack, key, inbound: true);
        if (!stack.TryAddInbound(flow))
        {
            return null;
        }

        try
        {
            flow._connection.Connect(stack.Now, flow._writer);
            flow.AfterCall();
        }
        catch (Exception e) when (!EventLoop.IsFatal(e))
        {
            stack.ContainFault(flow, e); // the flow is in the table: reset and remove it like any other
            return null;
        }

        return flow;
    }

    /// <inheritdoc />
    public void OnSegment(in TcpSegmentInfo segment, ReadOnlySpan<byte> payload)
    {
        if (_removed)
        {
            return;
        }

        _writer.LearnPeerMss(segment);
        bool wasEstablished = _connection.State >= TcpState.Established;
        _connection.OnSegment(segment, payload, _stack.Now, _writer);
        AfterCall();
        if (!_removed && !wasEstablished && _connection.State >= TcpState.Established)
        {
            // The handshake just completed: bytes or a shutdown may already wait in the stream.
            MarkDirty();
        }
    }

    /// <summary>No fd: nothing is registered for readiness.</summary>
    public void OnReady(uint events)
    {
    }

    /// <inheritdoc />
    public void OnTimer()
    {
        _scheduled = null;
        if (_removed)
        {
            return;
        }

        var now = _stack.Now;
        if (_connection.NextDeadline is { } deadline && deadline <= now)
        {
            _connection.OnTimer(now, _writer);
        }

        AfterCall();
    }

    /// <inheritdoc />
    public void Flush()
    {
        _dirty = false;
        if (_removed)
        {
            return;
        }

        if (ApplyRequests())
        {
            _connection.Poll(_stack.Now, _writer);
            AfterCall();
        }
    }

    /// <summary>Called from any thread by the stream: posts <see cref="OnKick"/> (the stream coalesces calls).</summary>
    private void Kick() => _stack.Post(_onKick);

    /// <summary>On the loop: the stream's other side wrote, read, shut down or aborted.</summary>
    private void OnKick()
    {
        Stream.TakeKick();
        MarkDirty();
    }

    private void MarkDirty()
    {
        if (!_removed && !_dirty)
        {
            _dirty = true;
            _stack.MarkDirty(this);
        }
    }

    /// <summary>Acts on an abort or a write shutdown from the stream's side; false when the flow is gone.</summary>
    private bool ApplyRequests()
    {
        if (Stream.AbortRequested)
        {
            _connection.Abort(_stack.Now, _writer);
            _connection.TakeEvents();
            Remove();
            return false;
        }

        // A FIN waits for the handshake: Close() before it would drop the connection outright.
        if (!_closeSent && _connection.State >= TcpState.Established && Stream.WriteShutRequested)
        {
            _closeSent = true;
            _connection.Close();
        }

        return true;
    }

    /// <summary>Acts on what the connection reported and re-arms its timer.</summary>
    private void AfterCall()
    {
        var events = _connection.TakeEvents();
        if ((events & TcpEvents.Reset) != 0)
        {
            Stream.Fail("The guest reset the connection.");
            Remove();
            return;
        }

        if ((events & TcpEvents.PeerFinished) != 0)
        {
            Stream.EndReceive();
        }

        if ((events & TcpEvents.Closed) != 0 || _connection.State == TcpState.Closed)
        {
            if (!_closeSent)
            {
                Stream.Fail("The connection closed before the stream ended.");
            }

            Remove();
            return;
        }

        if (_connection.NextDeadline is { } d && (_scheduled is null || d < _scheduled.Value))
        {
            _scheduled = d;
            _stack.Loop.Schedule(this, d);
        }
    }

    private void Remove()
    {
        if (!_removed)
        {
            _removed = true;
            _stack.RemoveTcpFlow(this);
        }
    }

    // ---- ITcpSendSource: the stream's send buffer ----

    /// <inheritdoc />
    public long Available => Stream.SendAvailable;

    /// <inheritdoc />
    public int Peek(long offset, Span<byte> destination) => Stream.PeekSend(offset, destination);

    /// <inheritdoc />
    public void Discard(long count) => Stream.DiscardSend(count);

    // ---- ITcpReceiveSink: the stream's read buffer ----

    /// <inheritdoc />
    public long FreeSpace => Stream.ReceiveFree;

    /// <inheritdoc />
    public int Write(ReadOnlySpan<byte> data)
    {
        int n = Stream.Deliver(data);
        if (n == 0 && !data.IsEmpty && Stream.AbortRequested)
        {
            MarkDirty(); // bytes for a closed stream: the flush resets the flow
        }

        return n;
    }

    /// <summary>
    /// A call into this flow threw: the guest gets a RST (when the connection can still build one;
    /// else its next segment meets no flow and gets one), the stream fails as a reset, and the flow
    /// leaves the table.
    /// </summary>
    public void Abandon()
    {
        if (_removed)
        {
            return;
        }

        try
        {
            _connection.Abort(_stack.Now, _writer);
            _connection.TakeEvents();
        }
        catch (Exception e) when (!EventLoop.IsFatal(e))
        {
            // its state is what failed; see the summary
        }

        Stream.Fail("The network stack reset the connection after an internal error.");
        Remove();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _removed = true;
        _stack.Loop.Cancel(this);
        _scheduled = null;
        if (_connection.State is not (TcpState.TimeWait or TcpState.Closed))
        {
            Stream.Fail("The network stack dropped the connection.");
        }
    }
}
