using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;
using Microsoft.Extensions.Logging;

namespace Beemesh.Netstack.Nat;

/// <summary>
/// One guest TCP connection spliced onto one host socket. The guest side is a
/// <see cref="TcpConnection"/>; this class wires it to its I/O parts and acts on what it reports:
/// the socket's lifetime is a <see cref="HostSocket"/>, the connection's send buffer is the host
/// socket's receive queue (<see cref="HostReceiveQueue"/>: MSG_PEEK at SO_PEEK_OFF, dropped with
/// MSG_TRUNC once the guest ACKs), its receive sink is the host socket's send buffer
/// (<see cref="HostSendBuffer"/>: bytes are ACKed to the guest only after send() took them or
/// the hold kept them), and its segments become frames in a <see cref="GuestSegmentWriter"/>.
/// Loop thread only.
/// </summary>
/// <remarks>
/// Lifetime: outbound flows start Connecting (host connect in flight, the guest's SYN held);
/// then a connection exists until it reports Closed or Reset, or the host socket fails.
/// The host fd is closed once both directions are done; the flow may linger in TIME-WAIT
/// without an fd. <see cref="Dispose"/> closes whatever is left.
/// </remarks>
internal sealed class TcpFlow : ITcpFlow
{
    private const uint SocketEvents = Sys.EPOLLIN | Sys.EPOLLOUT | Sys.EPOLLRDHUP | Sys.EPOLLET;

    private readonly NetworkStack _stack;
    private readonly HostSocket _socket;
    private readonly HostReceiveQueue _receiveQueue;
    private readonly HostSendBuffer _sendBuffer;
    private readonly GuestSegmentWriter _writer;
    private TcpConnection? _connection;
    private TcpSegmentInfo _syn;
    private bool _connecting;
    private bool _hostEof;
    private bool _dirty;
    private bool _disposed;
    private TimeSpan? _scheduled;
    private System.Net.IPEndPoint? _redirectedFrom;

    private TcpFlow(NetworkStack stack, FlowKey key, HostSocket socket, bool inbound)
    {
        _stack = stack;
        _socket = socket;
        _receiveQueue = new HostReceiveQueue(socket);
        _sendBuffer = new HostSendBuffer(stack, socket);
        _writer = new GuestSegmentWriter(stack, key, _receiveQueue);
        Inbound = inbound;
    }

    /// <summary>The flow as the guest sees it.</summary>
    public FlowKey Key => _writer.Key; // kept once per flow, in the frame builder

    /// <summary>Created by a port-forwarding listener (the host side connected first).</summary>
    public bool Inbound { get; }

    /// <summary>The guest-side state, or Closed before the connection exists.</summary>
    public TcpState State => _connection?.State ?? TcpState.Closed;

    /// <summary>True once the connection can no longer carry data (TIME-WAIT or closed).</summary>
    public bool IsFinished => _disposed || (_connection is { } c && (c.State == TcpState.TimeWait || c.State == TcpState.Closed));

    /// <summary>Starts the host connect for a guest SYN; null when the socket could not even be created.</summary>
    public static TcpFlow? Connect(NetworkStack stack, FlowKey key, UInt128 host, ushort port, in TcpSegmentInfo syn, System.Net.IPEndPoint? redirectedFrom = null)
    {
        var socket = HostSocket.Connect(stack, host, port);
        if (socket is null)
        {
            return null;
        }

        var flow = new TcpFlow(stack, key, socket, inbound: false) { _syn = syn, _connecting = true, _redirectedFrom = redirectedFrom };
        flow._writer.LearnPeerMss(syn);
        if (!socket.TryRegister(stack.Loop, SocketEvents, flow))
        {
            socket.Close(reset: false);
            return null;
        }

        return flow;
    }

    /// <summary>Wraps an accepted host connection and sends the SYN into the guest.</summary>
    public static TcpFlow? Accept(NetworkStack stack, FlowKey key, int fd)
    {
        var socket = new HostSocket(fd);
        var flow = new TcpFlow(stack, key, socket, inbound: true);
        if (!stack.TryAddInbound(flow))
        {
            socket.Close(reset: true);
            return null;
        }

        try
        {
            socket.PrepareAccepted();
            flow._receiveQueue.EnablePeekOffset();
            flow._connection = new TcpConnection(stack.CreateTcpOptions(IpAddr.IsV4(key.GuestAddress)), flow._receiveQueue, flow._sendBuffer, stack.InitialSequenceNumber(key));
            flow._connection.Connect(stack.Now, flow._writer);
            flow.AfterCall();
        }
        catch (Exception e) when (!EventLoop.IsFatal(e))
        {
            stack.ContainFault(flow, e); // the flow is in the table: reset and remove it like any other
            return null;
        }

        // Readiness is only watched once the guest accepted: until then host data just queues.
        return flow;
    }

    /// <summary>A segment from the guest for this flow.</summary>
    public void OnSegment(in TcpSegmentInfo segment, ReadOnlySpan<byte> payload)
    {
        if (_connecting)
        {
            if ((segment.Flags & TcpFlags.Rst) != 0)
            {
                _stack.ConnectFinished(this, ok: false);
                _connecting = false;
                _stack.RemoveTcpFlow(this);
            }

            return; // a retransmitted SYN while the host connect is in flight: nothing to say yet
        }

        if (_connection is null)
        {
            return;
        }

        _writer.LearnPeerMss(segment);
        bool wasEstablished = _connection.State >= TcpState.Established;
        _sendBuffer.MoreFollows = (segment.Flags & (TcpFlags.Psh | TcpFlags.Fin)) == 0;
        BeginCall();
        try
        {
            _connection.OnSegment(segment, payload, _stack.Now, _writer);
        }
        finally
        {
            EndCall();
            _sendBuffer.MoreFollows = false;
        }

        if (_socket.Failed)
        {
            MarkDirty(); // a send() failed: the flush resets the flow
        }

        if (!wasEstablished && Inbound && _connection.State >= TcpState.Established && !_socket.IsRegistered && _socket.IsOpen)
        {
            _socket.Register(_stack.Loop, SocketEvents, this);
        }

        AfterCall();
    }

    /// <inheritdoc />
    public void OnReady(uint events)
    {
        if (_disposed)
        {
            return;
        }

        if (_connecting)
        {
            FinishConnect();

            // The same edge may already carry the peer's EOF (a server that accepts and closes):
            // with EPOLLET it will not be reported again, so fall through and handle it now.
            if (_connection is null || _disposed)
            {
                return;
            }
        }

        if (_connection is null)
        {
            return;
        }

        if ((events & Sys.EPOLLERR) != 0)
        {
            _socket.MarkFailed();
            MarkDirty();
            return;
        }

        if ((events & Sys.EPOLLOUT) != 0 && _sendBuffer.PendingLength > 0)
        {
            _sendBuffer.OnWritable();
        }

        if ((events & (Sys.EPOLLRDHUP | Sys.EPOLLHUP)) != 0 && !_hostEof)
        {
            _hostEof = true;
            _connection.Close();
        }

        MarkDirty();
    }

    /// <inheritdoc />
    public void OnTimer()
    {
        _scheduled = null;
        if (_connection is null || _disposed)
        {
            return;
        }

        var now = _stack.Now;
        if (_connection.NextDeadline is { } deadline && deadline <= now)
        {
            BeginCall();
            try
            {
                _connection.OnTimer(now, _writer);
            }
            finally
            {
                EndCall();
            }
        }

        AfterCall();
    }

    private void BeginCall()
    {
        _receiveQueue.BeginCall();
        _sendBuffer.BeginCall();
    }

    private void EndCall()
    {
        _receiveQueue.EndCall();
        _sendBuffer.EndCall();
    }

    /// <summary>End of a batch: let the connection send data, ACKs and window updates.</summary>
    public void Flush()
    {
        _dirty = false;
        if (_connection is null || _disposed)
        {
            return;
        }

        if (_socket.Failed)
        {
            _connection.Abort(_stack.Now, _writer);
            _stack.RemoveTcpFlow(this);
            return;
        }

        BeginCall();
        try
        {
            _connection.Poll(_stack.Now, _writer);
        }
        finally
        {
            EndCall();
        }

        AfterCall();
    }

    private void MarkDirty()
    {
        if (!_dirty)
        {
            _dirty = true;
            _stack.MarkDirty(this);
        }
    }

    private void FinishConnect()
    {
        int error = _socket.TakeError();
        _connecting = false;
        if (error != 0)
        {
            _stack.ConnectFinished(this, ok: false);
            _stack.Logger.LogDebug("connect for {Flow} failed: errno {Errno}", Key, error);
            var syn = _syn;
            _connection = null;
            _stack.RemoveTcpFlow(this);
            _stack.SendReset(Key, syn);
            return;
        }

        _stack.ConnectFinished(this, ok: true);
        if (_redirectedFrom is not null && _stack.FlowRedirector is { } redirector && _socket.LocalEndPoint() is { } local)
        {
            redirector.Connected(_redirectedFrom, local);
        }

        _receiveQueue.EnablePeekOffset();
        _connection = new TcpConnection(_stack.CreateTcpOptions(IpAddr.IsV4(Key.GuestAddress)), _receiveQueue, _sendBuffer, _stack.InitialSequenceNumber(Key));
        _connection.AcceptSyn(_syn, _stack.Now, _writer);
        AfterCall();
    }

    /// <summary>Acts on what the connection reported and re-arms its timer.</summary>
    private void AfterCall()
    {
        var c = _connection!;
        var events = c.TakeEvents();
        if ((events & TcpEvents.Reset) != 0)
        {
            _socket.Close(reset: true);
            _stack.RemoveTcpFlow(this);
            return;
        }

        if ((events & TcpEvents.PeerFinished) != 0)
        {
            _sendBuffer.ShutdownWhenDrained();
        }

        if ((events & TcpEvents.Closed) != 0 || c.State == TcpState.Closed)
        {
            _socket.Close(reset: false);
            _stack.RemoveTcpFlow(this);
            return;
        }

        if (c.State == TcpState.TimeWait)
        {
            _socket.Close(reset: false);
        }

        if (c.NextDeadline is { } d && (_scheduled is null || d < _scheduled.Value))
        {
            _scheduled = d;
            _stack.Loop.Schedule(this, d);
        }
    }

    /// <summary>
    /// A call into this flow threw: the guest gets a RST (at the connection's own sequence number, or
    /// answering its SYN when no connection exists yet), the host socket is closed with a reset, and
    /// the flow leaves the table. If the connection cannot even build its RST, the guest's next
    /// segment meets no flow and is answered with one.
    /// </summary>
    public void Abandon()
    {
        if (_disposed)
        {
            return;
        }

        if (_connection is { } c)
        {
            try
            {
                c.Abort(_stack.Now, _writer);
            }
            catch (Exception e) when (!EventLoop.IsFatal(e))
            {
                // its state is what failed; see the summary
            }
        }
        else if (!Inbound)
        {
            _stack.SendReset(Key, _syn);
        }

        _socket.Close(reset: true);
        _stack.RemoveTcpFlow(this);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        // A removed flow must leave nothing in the timer heap: a keepalive or TIME-WAIT deadline
        // still queued there would keep the flow and its connection reachable until it fired.
        _stack.Loop.Cancel(this);
        _scheduled = null;
        _sendBuffer.Release();
        if (_connecting)
        {
            _connecting = false;
            _stack.ConnectFinished(this, ok: false);
        }

        _socket.Close(reset: _connection is { } c && c.State is not (TcpState.TimeWait or TcpState.Closed));
    }
}
