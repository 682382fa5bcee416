using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tcp;

/// <summary>
/// The TCP state machine of one connection (RFC 9293), sans-IO: input is a segment or a clock
/// tick plus <c>now</c>, output is segments written to an <see cref="ITcpSegmentWriter"/>,
/// accumulated <see cref="TcpEvents"/> and <see cref="NextDeadline"/>. It never touches a socket,
/// a timer or a thread, and it keeps no copy of data in either direction: outgoing bytes stay in
/// the <see cref="ITcpSendSource"/> until acknowledged, incoming bytes go straight to the
/// <see cref="ITcpReceiveSink"/> and only what the sink took is acknowledged (no out-of-order queue).
/// <code>
///                              +---------+
///                              | CLOSED  |&lt;-------------------------------+
///                              +---------+    RST / abort / retries        |
///              AcceptSyn:       |       |  Connect: snd SYN                |
///              snd SYN,ACK      |       +-----------------+                |
///                               v                         v                |
///                        +---------+   rcv SYN (simult.) +---------+       |
///                        | SYN_RCVD|&lt;--------------------| SYN_SENT|       |
///                        +---------+   snd SYN,ACK        +---------+       |
///             rcv ACK of SYN |                                | rcv SYN,ACK / snd ACK
///                            v                                v            |
///                        +-------------------------------------------+     |
///                        |                ESTABLISHED                |     |
///                        +-------------------------------------------+     |
///            Close(): FIN after data |                   | rcv FIN / snd ACK
///                                    v                   v                 |
///  +---------+  rcv FIN / snd ACK +---------+        +-----------+        |
///  | CLOSING |&lt;-------------------|FIN_WAIT1|        | CLOSE_WAIT|        |
///  +---------+                    +---------+        +-----------+        |
///       | rcv ACK of FIN  rcv ACK of FIN |                 | Close(): FIN after data
///       |                                v                 v               |
///       |                         +---------+         +---------+  rcv ACK of FIN
///       |                         |FIN_WAIT2|         | LAST_ACK|----------+
///       |                         +---------+         +---------+
///       v                              | rcv FIN / snd ACK
///  +-----------+ &lt;---------------------+
///  | TIME_WAIT |---- 2*MSL timer ----&gt; CLOSED (Closed event)
///  +-----------+
/// </code>
/// Sending: fast retransmit and NewReno recovery (RFC 6582), SACK-scoreboard hole retransmission
/// and pipe (RFC 6675), RTO with backoff (RFC 6298), go-back-N after a timeout, persist probes;
/// the window itself (slow start, congestion avoidance, reductions) is an
/// <see cref="ICongestionControl"/>: NewReno (RFC 5681, initial window RFC 6928) by default, or
/// CUBIC (RFC 9438), as <see cref="TcpConnectionOptions.CongestionControl"/> says.
/// Receiving: acceptability test and trimming (RFC 9293 §3.10.7.4), RST/SYN/ACK validation with
/// challenge ACKs (RFC 5961), PAWS and TS.Recent (RFC 7323 §4-5), delayed ACK (RFC 1122), receiver
/// SWS avoidance and a right window edge that never moves left (RFC 9293 §3.8.6).
/// </summary>
public sealed class TcpConnection
{
    private const int DefaultPeerMss = 536; // RFC 9293 §3.7.1: assume 536 when no MSS option (IPv4).

    private readonly TcpConnectionOptions _options;
    private readonly ITcpSendSource _source;
    private readonly ITcpReceiveSink _sink;
    private readonly SackScoreboard _scoreboard = new();
    private readonly ICongestionControl _cc;
    private readonly uint _iss;
    private readonly uint _tsOffset;

    private TcpEvents _events;

    // Send sequence space (RFC 9293 §3.3.1) plus SND.MAX, the highest sequence ever sent.
    private uint _sndUna;
    private uint _sndNxt;
    private uint _sndMax;
    private long _sndWnd;
    private long _maxSndWnd;
    private uint _sndWl1;
    private uint _sndWl2;
    private int _sndWndScale;
    private bool _synAcked;
    private bool _closeRequested;
    private bool _finSent;
    private uint _finSeq;

    // Receive sequence space.
    private uint _irs;
    private uint _rcvNxt;
    private uint _rcvAdvRight; // right edge of the window last advertised; never moves left
    private int _rcvWndScale;
    private uint _lastAckSent;
    private bool _ackNow;
    private bool _gapSeen; // data was dropped out of order; the next in-order data is ACKed at once
    private TimeSpan? _delayedAckDeadline;

    // Negotiated options.
    private bool _tsOk;
    private bool _wsOk;
    private bool _sackOk;
    private int _peerMss = DefaultPeerMss;
    private int _sendMss;
    private int _maxPayload;
    private uint _tsRecent;
    private bool _tsRecentValid;

    // Loss recovery (the window itself is _cc's).
    private int _dupAcks;
    private bool _inRecovery;
    private uint _recover;
    private bool _recoverValid;
    private uint _highRxt;

    // RTT / RTO (RFC 6298).
    private TimeSpan _srtt;
    private TimeSpan _rttVar;
    private bool _hasRtt;
    private TimeSpan _rto;
    private TimeSpan? _rtoDeadline;
    private int _retries;
    private bool _rttTiming;
    private uint _rttSeq;
    private TimeSpan _rttStart;
    private TimeSpan? _lastRttSample; // the sample the ACK being processed gave, for the controller
    private uint _tsRtoFloor;
    private bool _tsRtoFloorValid;

    // Persist, keepalive and TIME-WAIT.
    private TimeSpan? _persistDeadline;
    private TimeSpan _persistBackoff;
    private TimeSpan _lastReceived;
    private TimeSpan _lastProbe;
    private int _keepAliveProbesSent;
    private TimeSpan? _timeWaitDeadline;

    /// <summary>Creates a connection in <see cref="TcpState.Closed"/>.</summary>
    /// <param name="options">Tunables; read, never modified.</param>
    /// <param name="source">Holds our outgoing bytes until the peer acknowledges them.</param>
    /// <param name="sink">Takes in-order received bytes.</param>
    /// <param name="initialSequence">Our ISS (RFC 9293 §3.4.1, RFC 6528): the driver picks it unpredictably.</param>
    public TcpConnection(TcpConnectionOptions options, ITcpSendSource source, ITcpReceiveSink sink, uint initialSequence)
        : this(options, source, sink, initialSequence, CreateCongestionControl(options.CongestionControl, options.HyStart))
    {
    }

    /// <summary>Creates a connection in <see cref="TcpState.Closed"/> with its own congestion controller.</summary>
    /// <param name="options">Tunables; read, never modified (its <see cref="TcpConnectionOptions.CongestionControl"/> is ignored).</param>
    /// <param name="source">Holds our outgoing bytes until the peer acknowledges them.</param>
    /// <param name="sink">Takes in-order received bytes.</param>
    /// <param name="initialSequence">Our ISS (RFC 9293 §3.4.1, RFC 6528).</param>
    /// <param name="congestionControl">This connection's window; not shared with any other connection.</param>
    public TcpConnection(TcpConnectionOptions options, ITcpSendSource source, ITcpReceiveSink sink, uint initialSequence, ICongestionControl congestionControl)
    {
        ArgumentNullException.ThrowIfNull(congestionControl);
        _cc = congestionControl;
        _options = options;
        _source = source;
        _sink = sink;
        _iss = initialSequence;
        _tsOffset = initialSequence * 2654435761u; // a per-connection timestamp offset (RFC 7323 §5.4)
        _sndUna = _sndNxt = _sndMax = initialSequence;
        _rto = options.InitialRto;
        _sendMss = Math.Max(1, Math.Min(DefaultPeerMss, options.Mss));
        _maxPayload = _sendMss;
        _cc.Initialize(_sendMss);
    }

    /// <summary>A new controller of the given kind; <paramref name="hyStart"/> turns HyStart++ on for CUBIC's initial slow start.</summary>
    public static ICongestionControl CreateCongestionControl(TcpCongestionControl kind, bool hyStart = true) => kind switch
    {
        TcpCongestionControl.Cubic => new CubicCongestionControl { HyStart = hyStart },
        _ => new NewRenoCongestionControl(),
    };

    /// <summary>Current state.</summary>
    public TcpState State { get; private set; }

    /// <summary>Payload bytes per segment used for congestion control and, with TSO, as the segmentation size.</summary>
    public int SendMss => _sendMss;

    /// <summary>Sequence space sent but not yet acknowledged (SND.NXT - SND.UNA).</summary>
    public long BytesInFlight => (uint)(_sndNxt - _sndUna);

    /// <summary>SND.UNA: oldest unacknowledged sequence number.</summary>
    public uint SendUnacknowledged => _sndUna;

    /// <summary>SND.NXT: next sequence number to send.</summary>
    public uint SendNext => _sndNxt;

    /// <summary>RCV.NXT: next sequence number expected from the peer.</summary>
    public uint ReceiveNext => _rcvNxt;

    /// <summary>This connection's congestion controller (read it; the connection alone drives it).</summary>
    public ICongestionControl CongestionControl => _cc;

    /// <summary>Congestion window in bytes.</summary>
    public int CongestionWindow => _cc.CongestionWindow;

    /// <summary>Slow-start threshold in bytes.</summary>
    public int SlowStartThreshold => _cc.SlowStartThreshold;

    /// <summary>Smoothed round-trip time (zero before the first sample).</summary>
    public TimeSpan SmoothedRtt => _srtt;

    /// <summary>Current retransmission timeout, backoff included.</summary>
    public TimeSpan RetransmissionTimeout => _rto;

    /// <summary>Peer's send window in bytes (already scaled).</summary>
    public long SendWindow => _sndWnd;

    /// <summary>True while in fast recovery (RFC 6582 / RFC 6675).</summary>
    public bool InRecovery => _inRecovery;

    /// <summary>True when both sides agreed on timestamps.</summary>
    public bool TimestampsEnabled => _tsOk;

    /// <summary>True when both sides agreed on SACK.</summary>
    public bool SackEnabled => _sackOk;

    /// <summary>Shift applied to the peer's window field.</summary>
    public int SendWindowScale => _sndWndScale;

    /// <summary>Shift applied to the window field we send.</summary>
    public int ReceiveWindowScale => _rcvWndScale;

    /// <summary>The earliest time <see cref="OnTimer"/> has work to do; null when no timer runs.</summary>
    public TimeSpan? NextDeadline
    {
        get
        {
            if (State == TcpState.Closed)
            {
                return null;
            }

            TimeSpan? d = Earliest(_rtoDeadline, _delayedAckDeadline);
            d = Earliest(d, _persistDeadline);
            d = Earliest(d, _timeWaitDeadline);
            return Earliest(d, KeepAliveDeadline());
        }
    }

    /// <summary>Returns and clears the events accumulated since the last call.</summary>
    public TcpEvents TakeEvents()
    {
        TcpEvents e = _events;
        _events = TcpEvents.None;
        return e;
    }

    /// <summary>Passive open: the peer's SYN arrived (the driver validated it); replies SYN-ACK.</summary>
    public void AcceptSyn(in TcpSegmentInfo syn, TimeSpan now, ITcpSegmentWriter output)
    {
        if (State != TcpState.Closed || (syn.Flags & TcpFlags.Syn) == 0)
        {
            return;
        }

        _irs = syn.Seq;
        _rcvNxt = syn.Seq + 1;
        _rcvAdvRight = _rcvNxt;
        NegotiateOptions(in syn.Options);
        // RFC 7323 §2.2: the window field of a SYN is never scaled.
        _sndWnd = syn.Window;
        _maxSndWnd = _sndWnd;
        _sndWl1 = syn.Seq;
        _sndWl2 = _iss;
        _lastReceived = now;
        State = TcpState.SynReceived;
        SendSyn(now, output);
    }

    /// <summary>Active open: sends our SYN.</summary>
    public void Connect(TimeSpan now, ITcpSegmentWriter output)
    {
        if (State != TcpState.Closed)
        {
            return;
        }

        State = TcpState.SynSent;
        _lastReceived = now;
        SendSyn(now, output);
    }

    /// <summary>The host reached EOF: send FIN once all source data is sent (half-close; receiving continues).</summary>
    public void Close()
    {
        switch (State)
        {
            case TcpState.Closed:
            case TcpState.Listen:
            case TcpState.SynSent:
                EnterClosed();
                break;
            case TcpState.SynReceived:
                _closeRequested = true; // FIN-WAIT-1 once the handshake completes (RFC 9293 §3.10.4).
                break;
            case TcpState.Established:
                _closeRequested = true;
                State = TcpState.FinWait1;
                break;
            case TcpState.CloseWait:
                _closeRequested = true;
                State = TcpState.LastAck;
                break;
        }
    }

    /// <summary>Sends RST (when the peer knows the connection) and goes to Closed.</summary>
    public void Abort(TimeSpan now, ITcpSegmentWriter output)
    {
        if (State == TcpState.Closed)
        {
            return;
        }

        if (State != TcpState.SynSent && State != TcpState.Listen && State != TcpState.TimeWait)
        {
            SendReset(_sndNxt, now, output);
        }

        EnterClosed();
    }

    /// <summary>Sends what is due now: retransmissions in recovery, new data within the peer's window and cwnd, FIN, a pending ACK or a window update.</summary>
    public void Poll(TimeSpan now, ITcpSegmentWriter output)
    {
        if (State == TcpState.Closed || State == TcpState.SynSent || State == TcpState.Listen)
        {
            return;
        }

        Transmit(now, output);
    }

    /// <summary>Runs expired timers: retransmission, delayed ACK, persist, keepalive, TIME-WAIT.</summary>
    public void OnTimer(TimeSpan now, ITcpSegmentWriter output)
    {
        if (State == TcpState.Closed)
        {
            return;
        }

        if (_timeWaitDeadline is { } tw && now >= tw)
        {
            _timeWaitDeadline = null;
            EnterClosed();
            return;
        }

        if (_rtoDeadline is { } rto && now >= rto)
        {
            OnRetransmissionTimeout(now, output);
            if (State == TcpState.Closed)
            {
                return;
            }
        }

        if (_persistDeadline is { } p && now >= p)
        {
            _persistDeadline = null;
            if (_sndMax == _sndUna && UnsentBytes() > 0)
            {
                SendProbe(now, output);
                _persistBackoff = Min(_persistBackoff + _persistBackoff, _options.MaxRto);
                _persistDeadline = now + _persistBackoff;
            }
        }

        if (KeepAliveDeadline() is { } ka && now >= ka)
        {
            if (_keepAliveProbesSent >= _options.KeepAliveProbes)
            {
                SendReset(_sndNxt, now, output);
                _events |= TcpEvents.Reset;
                EnterClosed();
                return;
            }

            _keepAliveProbesSent++;
            _lastProbe = now;
            SendProbe(now, output);
        }

        if (_delayedAckDeadline is { } da && now >= da)
        {
            _ackNow = true;
        }

        Transmit(now, output);
    }

    /// <summary>Processes one segment of this connection's 4-tuple; <paramref name="payload"/> is its data.</summary>
    public void OnSegment(in TcpSegmentInfo segment, ReadOnlySpan<byte> payload, TimeSpan now, ITcpSegmentWriter output)
    {
        if (payload.Length > segment.PayloadLength)
        {
            payload = payload[..segment.PayloadLength];
        }

        switch (State)
        {
            case TcpState.Closed:
            case TcpState.Listen:
                return;
            case TcpState.SynSent:
                OnSegmentSynSent(in segment, now, output);
                return;
        }

        TcpFlags flags = segment.Flags;
        bool rst = (flags & TcpFlags.Rst) != 0;
        bool syn = (flags & TcpFlags.Syn) != 0;
        bool fin = (flags & TcpFlags.Fin) != 0;
        ref readonly TcpOptions opts = ref segment.Options;

        // A retransmitted SYN while we wait for the handshake ACK: our SYN-ACK was lost.
        if (State == TcpState.SynReceived && syn && !rst && (flags & TcpFlags.Ack) == 0 && segment.Seq == _irs)
        {
            SendSyn(now, output);
            return;
        }

        // PAWS (RFC 7323 §5.3): an older TSval than TS.Recent marks an old duplicate.
        if (_tsOk && opts.HasTimestamp && _tsRecentValid && !rst && TcpSeq.Lt(opts.TsVal, _tsRecent))
        {
            _ackNow = true;
            Transmit(now, output);
            return;
        }

        // Acceptability test (RFC 9293 §3.10.7.4).
        int segLen = payload.Length + (syn ? 1 : 0) + (fin ? 1 : 0);
        long rcvWnd = AcceptWindow();
        if (!IsAcceptable(segment.Seq, segLen, rcvWnd))
        {
            if (!rst)
            {
                if (fin && State == TcpState.TimeWait)
                {
                    _timeWaitDeadline = now + _options.TimeWait; // retransmitted FIN restarts 2*MSL (RFC 9293 §3.10.7.4)
                }

                _ackNow = true;
                Transmit(now, output);
            }

            return;
        }

        _lastReceived = now;
        _keepAliveProbesSent = 0;

        if (rst)
        {
            // RFC 5961 §3.2: only an exact RCV.NXT match resets; anything else in window gets a challenge ACK.
            if (segment.Seq == _rcvNxt)
            {
                _events |= TcpEvents.Reset;
                EnterClosed();
            }
            else
            {
                _ackNow = true;
                Transmit(now, output);
            }

            return;
        }

        if (syn)
        {
            // RFC 5961 §4: a SYN in a synchronized state gets a challenge ACK, never a reset.
            _ackNow = true;
            Transmit(now, output);
            return;
        }

        if ((flags & TcpFlags.Ack) == 0)
        {
            return;
        }

        if (State == TcpState.SynReceived)
        {
            if (segment.Ack != _iss + 1)
            {
                SendReset(segment.Ack, now, output, withAck: false);
                return;
            }

            CompleteHandshake();
            if (_tsOk && opts.HasTimestamp)
            {
                TakeRttSample(opts.TsEcr, now);
            }
            else if (_rttTiming)
            {
                SampleRtt(now - _rttStart);
            }

            _rttTiming = false;
            _sndWnd = (long)segment.Window << _sndWndScale;
            _maxSndWnd = Math.Max(_maxSndWnd, _sndWnd);
            _sndWl1 = segment.Seq;
            _sndWl2 = segment.Ack;
        }

        if (!ProcessAck(in segment, payload.Length, now, output))
        {
            return;
        }

        if (State == TcpState.Closed)
        {
            return;
        }

        // TS.Recent update (RFC 7323 §4.3).
        if (_tsOk && opts.HasTimestamp && TcpSeq.Le(segment.Seq, _lastAckSent) &&
            (!_tsRecentValid || TcpSeq.Ge(opts.TsVal, _tsRecent)))
        {
            _tsRecent = opts.TsVal;
            _tsRecentValid = true;
        }

        ProcessData(segment.Seq, payload, fin, now);
        Transmit(now, output);
    }

    private void OnSegmentSynSent(in TcpSegmentInfo seg, TimeSpan now, ITcpSegmentWriter output)
    {
        bool hasAck = (seg.Flags & TcpFlags.Ack) != 0;
        bool rst = (seg.Flags & TcpFlags.Rst) != 0;
        if (hasAck && seg.Ack != _iss + 1)
        {
            if (!rst)
            {
                SendReset(seg.Ack, now, output, withAck: false);
            }

            return;
        }

        if (rst)
        {
            if (hasAck)
            {
                _events |= TcpEvents.Reset;
                EnterClosed();
            }

            return;
        }

        if ((seg.Flags & TcpFlags.Syn) == 0)
        {
            return;
        }

        _irs = seg.Seq;
        _rcvNxt = seg.Seq + 1;
        _rcvAdvRight = _rcvNxt;
        NegotiateOptions(in seg.Options);
        if (_tsOk)
        {
            _tsRecent = seg.Options.TsVal;
            _tsRecentValid = true;
            TakeRttSample(seg.Options.TsEcr, now);
        }
        else if (_rttTiming)
        {
            SampleRtt(now - _rttStart);
        }

        _rttTiming = false;
        _sndWnd = seg.Window;
        _maxSndWnd = _sndWnd;
        _sndWl1 = seg.Seq;
        _sndWl2 = seg.Ack;
        _lastReceived = now;
        if (hasAck)
        {
            CompleteHandshake();
            _sndUna = _iss + 1;
            _retries = 0;
            _rtoDeadline = null;
            _ackNow = true;
            Transmit(now, output);
        }
        else
        {
            // Simultaneous open (RFC 9293 §3.5): answer SYN-ACK, reusing our ISS.
            State = TcpState.SynReceived;
            SendSyn(now, output);
        }
    }

    private void CompleteHandshake()
    {
        _synAcked = true;
        _sndUna = _iss + 1;
        if (TcpSeq.Lt(_sndNxt, _sndUna))
        {
            _sndNxt = _sndUna;
        }

        _sndMax = TcpSeq.Max(_sndMax, _sndNxt);
        State = _closeRequested ? TcpState.FinWait1 : TcpState.Established;
        _events |= TcpEvents.Established;
        _retries = 0;
        _rtoDeadline = null;
    }

    private void NegotiateOptions(in TcpOptions peer)
    {
        _wsOk = peer.HasWindowScale && _options.ReceiveWindowScale >= 0;
        if (_wsOk)
        {
            _sndWndScale = Math.Min((int)peer.WindowScale, 14);
            _rcvWndScale = Math.Clamp(_options.ReceiveWindowScale, 0, 14);
        }
        else
        {
            _sndWndScale = 0;
            _rcvWndScale = 0;
        }

        _tsOk = _options.Timestamps && peer.HasTimestamp;
        _sackOk = _options.Sack && peer.SackPermitted;
        if (_tsOk && State == TcpState.Closed)
        {
            _tsRecent = peer.TsVal;
            _tsRecentValid = true;
        }

        _peerMss = peer.Mss != 0 ? peer.Mss : DefaultPeerMss;
        // RFC 6691: the MSS option excludes TCP options, so the sender subtracts the ones it adds.
        _sendMss = Math.Max(64, Math.Min(_peerMss, _options.Mss) - (_tsOk ? 12 : 0));
        _maxPayload = _options.MaxSegmentPayload > 0 ? Math.Max(_options.MaxSegmentPayload, _sendMss) : _sendMss;
        _cc.Initialize(_sendMss); // RFC 6928 initial window.
    }

    // Returns false when the segment must be dropped after the ACK check.
    private bool ProcessAck(in TcpSegmentInfo seg, int payloadLength, TimeSpan now, ITcpSegmentWriter output)
    {
        uint ack = seg.Ack;
        if (TcpSeq.Gt(ack, _sndMax))
        {
            // Acknowledges something never sent (RFC 9293 §3.10.7.4): ACK and drop.
            _ackNow = true;
            Transmit(now, output);
            return false;
        }

        // RFC 5961 §5.2: ACKs older than the largest window ever seen get a challenge ACK.
        if (TcpSeq.Lt(ack, _sndUna - (uint)Math.Min(_maxSndWnd, int.MaxValue)))
        {
            _ackNow = true;
            Transmit(now, output);
            return false;
        }

        long oldWnd = _sndWnd;
        bool windowUpdated = false;
        if (TcpSeq.Lt(_sndWl1, seg.Seq) || (_sndWl1 == seg.Seq && TcpSeq.Le(_sndWl2, ack)))
        {
            if (TcpSeq.Ge(ack, _sndUna))
            {
                _sndWnd = (long)seg.Window << _sndWndScale;
                _maxSndWnd = Math.Max(_maxSndWnd, _sndWnd);
                _sndWl1 = seg.Seq;
                _sndWl2 = ack;
                windowUpdated = true;
            }
        }

        if (_sndWnd > 0)
        {
            _persistDeadline = null;
        }

        if (_sackOk && seg.Options.SackCount > 0)
        {
            int n = Math.Min(seg.Options.SackCount, 4);
            for (int i = 0; i < n; i++)
            {
                SackBlock b = seg.Options.Sack[i];
                // Ignore D-SACKs and blocks outside what is outstanding (RFC 2883, RFC 6675 §5).
                if (TcpSeq.Lt(_sndUna, b.Right) && TcpSeq.Le(b.Right, _sndMax) && TcpSeq.Lt(b.Left, b.Right))
                {
                    _scoreboard.Add(TcpSeq.Max(b.Left, ack), b.Right);
                }
            }
        }

        if (TcpSeq.Gt(ack, _sndUna))
        {
            OnNewAck(in seg, ack, now, output);
        }
        else if (ack == _sndUna && _sndMax != _sndUna && payloadLength == 0 &&
                 (seg.Flags & (TcpFlags.Syn | TcpFlags.Fin)) == 0 && (!windowUpdated || _sndWnd == oldWnd))
        {
            OnDuplicateAck(now, output);
        }

        return true;
    }

    private void OnNewAck(in TcpSegmentInfo seg, uint ack, TimeSpan now, ITcpSegmentWriter output)
    {
        long ackedSeq = TcpSeq.Diff(ack, _sndUna);
        bool finAcked = _finSent && TcpSeq.Gt(ack, _finSeq);
        long dataAcked = ackedSeq - (finAcked && TcpSeq.Le(_sndUna, _finSeq) ? 1 : 0);
        if (dataAcked > 0)
        {
            _source.Discard(dataAcked);
            _events |= TcpEvents.SendSpaceFreed;
        }

        // RTT: timestamps when available (RFC 7323 §4), else one timed segment with Karn's rule.
        _lastRttSample = null;
        if (_tsOk && seg.Options.HasTimestamp && seg.Options.TsEcr != 0)
        {
            TakeRttSample(seg.Options.TsEcr, now);
        }
        else if (_rttTiming && TcpSeq.Gt(ack, _rttSeq))
        {
            SampleRtt(now - _rttStart);
            _rttTiming = false;
        }

        _cc.OnAckSample(ack, _sndMax, _lastRttSample);

        _sndUna = ack;
        if (TcpSeq.Lt(_sndNxt, ack))
        {
            _sndNxt = ack;
        }

        _scoreboard.Prune(ack);
        _retries = 0;

        if (_inRecovery)
        {
            if (TcpSeq.Ge(ack, _recover))
            {
                // Full acknowledgment (RFC 6582 §3.2 step 3).
                _cc.OnRecoveryExit(TcpSeq.Diff(_sndMax, _sndUna));
                _inRecovery = false;
                _dupAcks = 0;
            }
            else
            {
                // Partial acknowledgment: the next hole is lost too; retransmit it now.
                _cc.OnPartialAck(ackedSeq);
                if (TcpSeq.Ge(_sndUna, _highRxt))
                {
                    RetransmitFirst(now, output);
                }
            }
        }
        else
        {
            _dupAcks = 0;
            _cc.OnAck(ackedSeq, _srtt, now);
        }

        // RFC 6298 §5.2-5.3: stop the timer when everything is acknowledged, else restart it.
        _rtoDeadline = _sndUna == _sndMax ? null : now + _rto;

        if (finAcked)
        {
            switch (State)
            {
                case TcpState.FinWait1:
                    State = TcpState.FinWait2;
                    break;
                case TcpState.Closing:
                    EnterTimeWait(now);
                    break;
                case TcpState.LastAck:
                    EnterClosed();
                    break;
            }
        }
    }

    private void OnDuplicateAck(TimeSpan now, ITcpSegmentWriter output)
    {
        _dupAcks++;
        if (_inRecovery)
        {
            if (!_sackOk)
            {
                _cc.OnRecoveryDuplicateAck(); // NewReno window inflation (RFC 6582 §3.2 step 4).
            }

            return;
        }

        bool sackLoss = _sackOk && _scoreboard.Count > 0 && _scoreboard.SackedBytes() >= 3L * _sendMss;
        if (_dupAcks < 3 && !sackLoss)
        {
            return;
        }

        // RFC 6582 §3.2 step 1: no new recovery for losses from before the last one.
        if (_recoverValid && !TcpSeq.Gt(_sndUna, _recover) && _sndUna != _recover)
        {
            return;
        }

        _cc.OnFastRetransmit(TcpSeq.Diff(_sndMax, _sndUna), _sackOk, now);
        _recover = _sndMax;
        _recoverValid = true;
        _inRecovery = true;
        _highRxt = _sndUna;
        RetransmitFirst(now, output);
    }

    // Retransmits the first unacknowledged (and un-SACKed) segment regardless of cwnd (RFC 5681 §3.2 step 4).
    private void RetransmitFirst(TimeSpan now, ITcpSegmentWriter output)
    {
        uint start = _sndUna;
        uint end = _sndMax;
        if (_sackOk && _scoreboard.Count > 0 && _scoreboard.NextHole(_sndUna, out uint hs, out uint he))
        {
            start = hs;
            end = he;
        }

        SendRange(start, end, now, output);
    }

    // Sends one segment covering [start, min(end, start + max payload)), data and/or FIN.
    private bool SendRange(uint start, uint end, TimeSpan now, ITcpSegmentWriter output)
    {
        long dataEnd = _synAcked ? _source.Available : 0;
        long offset = TcpSeq.Diff(start, _sndUna);
        long len = Math.Min(TcpSeq.Diff(end, start), _maxPayload);
        long dataLen = Math.Max(0, Math.Min(len, dataEnd - offset));
        if (_finSent)
        {
            dataLen = Math.Min(dataLen, Math.Max(0, TcpSeq.Diff(_finSeq, start)));
        }

        bool fin = _finSent && TcpSeq.Diff(_finSeq, start) == dataLen && TcpSeq.Gt(end, _finSeq);
        if (dataLen == 0 && !fin)
        {
            return false;
        }

        TcpFlags flags = TcpFlags.Ack | (fin ? TcpFlags.Fin : 0) | (dataLen > 0 ? TcpFlags.Psh : 0);
        EmitSegment(start, (int)dataLen, flags, offset, now, output);
        uint segEnd = start + (uint)dataLen + (fin ? 1u : 0u);
        if (TcpSeq.Gt(segEnd, _highRxt))
        {
            _highRxt = segEnd;
        }

        if (_rttTiming && TcpSeq.Le(start, _rttSeq))
        {
            _rttTiming = false; // Karn: never time a retransmitted segment.
        }

        _rtoDeadline ??= now + _rto;
        return true;
    }

    private void OnRetransmissionTimeout(TimeSpan now, ITcpSegmentWriter output)
    {
        _rtoDeadline = null;
        if (State == TcpState.SynSent || State == TcpState.SynReceived)
        {
            if (++_retries > _options.MaxSynRetries)
            {
                _events |= TcpEvents.Reset;
                EnterClosed();
                return;
            }

            _rto = Min(_rto + _rto, _options.MaxRto);
            SendSyn(now, output);
            return;
        }

        if (_sndUna == _sndMax)
        {
            return;
        }

        if (++_retries > _options.MaxRetransmissions)
        {
            SendReset(_sndNxt, now, output);
            _events |= TcpEvents.Reset;
            EnterClosed();
            return;
        }

        // RFC 5681 §3.1 eq. 4 and loss window; RFC 6298 §5.5 backoff; RFC 6582 §4 recover = highest sent.
        _cc.OnRetransmissionTimeout(TcpSeq.Diff(_sndMax, _sndUna), _retries == 1, now);
        _inRecovery = false;
        _dupAcks = 0;
        _recover = _sndMax;
        _recoverValid = true;
        _scoreboard.Clear(); // RFC 2018 §8: the receiver may have reneged.
        _highRxt = _sndUna;
        _rttTiming = false;
        _rto = Min(_rto + _rto, _options.MaxRto);
        _tsRtoFloor = TsNow(now);
        _tsRtoFloorValid = true;
        _sndNxt = _sndUna; // go back N: resend from the first unacknowledged byte as cwnd reopens.
        SendRange(_sndUna, _sndMax, now, output);
        _sndNxt = TcpSeq.Max(_sndNxt, _highRxt);
        _rtoDeadline = now + _rto;
    }

    private void ProcessData(uint seq, ReadOnlySpan<byte> payload, bool fin, TimeSpan now)
    {
        bool receives = State is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2;
        if (!receives)
        {
            if (fin && State == TcpState.TimeWait)
            {
                _ackNow = true; // a retransmitted FIN: ACK it and restart 2*MSL (RFC 9293 §3.10.7.4).
                _timeWaitDeadline = now + _options.TimeWait;
            }
            else if (payload.Length > 0 || fin)
            {
                _ackNow = true;
            }

            return;
        }

        if (TcpSeq.Gt(seq, _rcvNxt))
        {
            _ackNow = true; // out of order: we keep no queue; a duplicate ACK tells the sender.
            _gapSeen = true;
            return;
        }

        int skip = TcpSeq.Diff(_rcvNxt, seq);
        if (skip > payload.Length)
        {
            _ackNow |= payload.Length > 0 || fin;
            return;
        }

        ReadOnlySpan<byte> data = payload[skip..];
        if (skip > 0)
        {
            _ackNow = true;
        }

        int taken = 0;
        if (data.Length > 0)
        {
            long window = AcceptWindow();
            ReadOnlySpan<byte> offered = data.Length > window ? data[..(int)Math.Max(0, window)] : data;
            if (offered.Length > 0)
            {
                taken = _sink.Write(offered);
                taken = Math.Clamp(taken, 0, offered.Length);
            }

            if (taken > 0)
            {
                _rcvNxt += (uint)taken;
                bool fillsGap = _gapSeen;
                _gapSeen = taken < data.Length;
                _events |= TcpEvents.DataReceived;
                // RFC 5681 §4.2: ACK at once when a segment fills a gap (the sender is recovering).
                if (fillsGap || TcpSeq.Diff(_rcvNxt, _lastAckSent) >= 2 * _options.Mss)
                {
                    _ackNow = true;
                }
                else
                {
                    _delayedAckDeadline ??= now + _options.DelayedAck;
                }
            }

            if (taken < data.Length)
            {
                _ackNow = true; // the sink is full: tell the sender what we really took.
                return;
            }
        }

        if (fin)
        {
            _rcvNxt++;
            _ackNow = true;
            _events |= TcpEvents.PeerFinished;
            switch (State)
            {
                case TcpState.Established:
                    State = TcpState.CloseWait;
                    break;
                case TcpState.FinWait1:
                    State = TcpState.Closing;
                    break;
                case TcpState.FinWait2:
                    EnterTimeWait(now);
                    break;
            }
        }
    }

    private void Transmit(TimeSpan now, ITcpSegmentWriter output)
    {
        bool sent = false;
        if (State is TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck)
        {
            sent = TransmitData(now, output);
        }

        if (!sent && _ackNow && State != TcpState.Closed)
        {
            if (State == TcpState.SynReceived)
            {
                SendSyn(now, output);
            }
            else
            {
                EmitSegment(_sndNxt, 0, TcpFlags.Ack, 0, now, output);
            }

            sent = true;
        }

        if (!sent && State is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 && WindowUpdateDue())
        {
            EmitSegment(_sndNxt, 0, TcpFlags.Ack, 0, now, output);
        }
    }

    // Receiver SWS avoidance (RFC 9293 §3.8.6.2.2): announce a window that opened by at least
    // min(buffer/2, MSS), and only when the advertised remainder has become small.
    private bool WindowUpdateDue()
    {
        // Only what the window field can express counts: without window scaling a sink with more
        // than 64 KiB free would otherwise ask for an update after every batch, each the same 65535.
        long free = Math.Min(Math.Min(Math.Max(0, _sink.FreeSpace), _options.MaxReceiveWindow), 65535L << _rcvWndScale);
        long remaining = TcpSeq.Diff(_rcvAdvRight, _rcvNxt);
        long threshold = Math.Min(_options.MaxReceiveWindow / 2, _options.Mss);
        return free - remaining >= threshold && remaining <= free / 2;
    }

    private bool TransmitData(TimeSpan now, ITcpSegmentWriter output)
    {
        bool any = false;
        for (int guard = 0; guard < 4096; guard++)
        {
            // 1. RFC 6675 NextSeg rule 1: retransmit holes below the highest SACKed byte while pipe allows.
            if (_inRecovery && _sackOk && _scoreboard.Count > 0)
            {
                uint from = TcpSeq.Max(_highRxt, _sndUna);
                if (_scoreboard.NextHole(from, out uint hs, out uint he) && Pipe() < _cc.CongestionWindow)
                {
                    if (SendRange(hs, he, now, output))
                    {
                        any = true;
                    }
                    else
                    {
                        _highRxt = he; // nothing sendable there (the source is shorter than expected): skip the hole.
                    }

                    continue;
                }
            }

            // 2. New data (or data resent after a timeout) from SND.NXT.
            if (TcpSeq.Lt(_sndNxt, _sndMax) && _scoreboard.Count > 0)
            {
                _sndNxt = _scoreboard.SkipSacked(_sndNxt);
                if (TcpSeq.Gt(_sndNxt, _sndMax))
                {
                    _sndNxt = _sndMax;
                }
            }

            long offset = TcpSeq.Diff(_sndNxt, _sndUna);
            long unsent = _source.Available - offset;
            if (_finSent)
            {
                unsent = Math.Min(unsent, TcpSeq.Diff(_finSeq, _sndNxt));
            }

            unsent = Math.Max(0, unsent);
            bool finPending = _closeRequested && State is TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck &&
                              (!_finSent || TcpSeq.Le(_sndNxt, _finSeq));
            if (unsent == 0 && !finPending)
            {
                break;
            }

            long flight = _inRecovery && _sackOk ? Pipe() : offset;
            long cwndRoom = _cc.CongestionWindow - flight;
            long wndRoom = _sndWnd - offset;
            long room = Math.Min(cwndRoom, wndRoom);
            long len = Math.Min(Math.Min(unsent, _maxPayload), Math.Max(0, room));
            bool allData = len == unsent;

            // Sender SWS avoidance (RFC 9293 §3.8.6.2.1): full segments, or all that is left, or half the max window.
            if (unsent > 0 && !allData && len < _sendMss && len < _maxSndWnd / 2)
            {
                len = 0;
            }

            if (unsent > 0 && len == 0)
            {
                ArmPersistIfIdle(now);
                break;
            }

            bool fin = finPending && allData;
            if (len == 0 && !fin)
            {
                break;
            }

            if (fin && !_finSent)
            {
                _finSent = true;
                _finSeq = _sndNxt + (uint)len;
            }

            TcpFlags flags = TcpFlags.Ack | (fin ? TcpFlags.Fin : 0) | (allData && len > 0 ? TcpFlags.Psh : 0);
            bool retransmission = TcpSeq.Lt(_sndNxt, _sndMax);
            EmitSegment(_sndNxt, (int)len, flags, offset, now, output);
            if (!retransmission && !_tsOk && !_rttTiming && len > 0)
            {
                _rttTiming = true;
                _rttSeq = _sndNxt;
                _rttStart = now;
            }
            else if (retransmission && _rttTiming && TcpSeq.Le(_sndNxt, _rttSeq))
            {
                _rttTiming = false;
            }

            _sndNxt += (uint)len + (fin ? 1u : 0u);
            _sndMax = TcpSeq.Max(_sndMax, _sndNxt);
            _rtoDeadline ??= now + _rto;
            _persistDeadline = null;
            any = true;
            if (fin)
            {
                break;
            }
        }

        return any;
    }

    // RFC 6675 §4 SetPipe, simplified: every un-SACKed byte below the highest SACK is lost, and
    // counts only once retransmitted; everything above the highest SACK is in flight.
    private long Pipe()
    {
        if (_scoreboard.Count == 0)
        {
            return TcpSeq.Diff(_sndNxt, _sndUna);
        }

        uint high = _scoreboard.HighestSacked;
        long above = Math.Max(0, TcpSeq.Diff(_sndNxt, high));
        uint rxtTop = TcpSeq.Min(TcpSeq.Max(_highRxt, _sndUna), high);
        return above + _scoreboard.UnsackedBetween(_sndUna, rxtTop);
    }

    private void ArmPersistIfIdle(TimeSpan now)
    {
        if (_sndMax == _sndUna && _persistDeadline is null && _rtoDeadline is null)
        {
            _persistBackoff = Max(_rto, _options.MinRto);
            _persistDeadline = now + _persistBackoff;
        }
    }

    private long UnsentBytes()
    {
        if (!_synAcked)
        {
            return 0;
        }

        return Math.Max(0, _source.Available - TcpSeq.Diff(_sndNxt, _sndUna));
    }

    // Zero-window and keepalive probe: an ACK carrying SND.UNA-1 that the peer must answer with an ACK
    // (RFC 1122 §4.2.3.6 allows it; Linux probes the same way).
    private void SendProbe(TimeSpan now, ITcpSegmentWriter output)
        => EmitSegment(_sndUna - 1, 0, TcpFlags.Ack, 0, now, output);

    private void SendSyn(TimeSpan now, ITcpSegmentWriter output)
    {
        var seg = new TcpSegmentInfo
        {
            Seq = _iss,
            Flags = TcpFlags.Syn,
            // RFC 7323 §2.2: the window in a SYN is never scaled.
            Window = (ushort)Math.Min(65535, Math.Min(Math.Max(0, _sink.FreeSpace), _options.MaxReceiveWindow)),
        };
        seg.Options.Mss = (ushort)Math.Clamp(_options.Mss, 1, 65535);
        bool synAck = State == TcpState.SynReceived;
        if (synAck)
        {
            seg.Flags |= TcpFlags.Ack;
            seg.Ack = _rcvNxt;
            _lastAckSent = _rcvNxt;
            _rcvAdvRight = _rcvNxt + seg.Window;
        }

        // In a SYN-ACK, only echo what the peer offered (RFC 7323 §1.3, RFC 2018 §2).
        if (!synAck || _wsOk)
        {
            if (_options.ReceiveWindowScale >= 0)
            {
                seg.Options.HasWindowScale = true;
                seg.Options.WindowScale = (byte)Math.Clamp(_options.ReceiveWindowScale, 0, 14);
            }
        }

        seg.Options.SackPermitted = _options.Sack && (!synAck || _sackOk);
        if (_options.Timestamps && (!synAck || _tsOk))
        {
            seg.Options.HasTimestamp = true;
            seg.Options.TsVal = TsNow(now);
            seg.Options.TsEcr = synAck ? _tsRecent : 0;
        }

        output.Write(in seg, 0);
        _sndNxt = _iss + 1;
        _sndMax = TcpSeq.Max(_sndMax, _sndNxt);
        if (!_tsOk && !_rttTiming && _retries == 0)
        {
            _rttTiming = true;
            _rttSeq = _iss;
            _rttStart = now;
        }
        else if (_retries > 0)
        {
            _rttTiming = false;
        }

        _ackNow = false;
        _delayedAckDeadline = null;
        _rtoDeadline = now + _rto;
    }

    private void EmitSegment(uint seq, int len, TcpFlags flags, long sourceOffset, TimeSpan now, ITcpSegmentWriter output)
    {
        var seg = new TcpSegmentInfo { Seq = seq, Ack = _rcvNxt, Flags = flags, PayloadLength = len };
        seg.Window = ComputeWindowField();
        if (_tsOk)
        {
            seg.Options.HasTimestamp = true;
            seg.Options.TsVal = TsNow(now);
            seg.Options.TsEcr = _tsRecent;
        }

        output.Write(in seg, len > 0 ? sourceOffset : 0);
        _lastAckSent = _rcvNxt;
        _ackNow = false;
        _delayedAckDeadline = null;
    }

    private void SendReset(uint seq, TimeSpan now, ITcpSegmentWriter output, bool withAck = true)
    {
        var seg = new TcpSegmentInfo { Seq = seq, Flags = TcpFlags.Rst };
        if (withAck)
        {
            seg.Flags |= TcpFlags.Ack;
            seg.Ack = _rcvNxt;
        }

        if (_tsOk)
        {
            seg.Options.HasTimestamp = true;
            seg.Options.TsVal = TsNow(now);
            seg.Options.TsEcr = _tsRecent;
        }

        output.Write(in seg, 0);
    }

    // The window field to send; the advertised right edge never moves left (RFC 9293 §3.8.6).
    private ushort ComputeWindowField()
    {
        long free = Math.Min(Math.Max(0, _sink.FreeSpace), _options.MaxReceiveWindow);
        long remaining = Math.Max(0, TcpSeq.Diff(_rcvAdvRight, _rcvNxt));
        long wnd = Math.Max(free, remaining);
        long field = wnd >> _rcvWndScale;
        if ((field << _rcvWndScale) < remaining)
        {
            field++;
        }

        field = Math.Min(field, 65535);
        uint right = _rcvNxt + (uint)(field << _rcvWndScale);
        if (TcpSeq.Gt(right, _rcvAdvRight))
        {
            _rcvAdvRight = right;
        }

        return (ushort)field;
    }

    // The window used by the acceptability test: what we advertised, or more if the sink has room.
    private long AcceptWindow()
    {
        long free = Math.Min(Math.Max(0, _sink.FreeSpace), _options.MaxReceiveWindow);
        long remaining = Math.Max(0, TcpSeq.Diff(_rcvAdvRight, _rcvNxt));
        return Math.Max(free, remaining);
    }

    private bool IsAcceptable(uint seq, int segLen, long wnd)
    {
        uint wndEnd = _rcvNxt + (uint)Math.Min(wnd, int.MaxValue);
        if (segLen == 0)
        {
            return wnd == 0 ? seq == _rcvNxt : TcpSeq.Le(_rcvNxt, seq) && TcpSeq.Lt(seq, wndEnd);
        }

        if (wnd == 0)
        {
            return false;
        }

        uint last = seq + (uint)segLen - 1;
        return (TcpSeq.Le(_rcvNxt, seq) && TcpSeq.Lt(seq, wndEnd)) ||
               (TcpSeq.Le(_rcvNxt, last) && TcpSeq.Lt(last, wndEnd));
    }

    private void TakeRttSample(uint tsEcr, TimeSpan now)
    {
        if (tsEcr == 0)
        {
            return;
        }

        // After a timeout the peer answers old duplicates with an old TS.Recent (RFC 7323 §4.3);
        // such echoes measure our retransmission delay, not the path, so they are not samples.
        if (_tsRtoFloorValid && TcpSeq.Lt(tsEcr, _tsRtoFloor))
        {
            return;
        }

        int ms = TcpSeq.Diff(TsNow(now), tsEcr);
        if (ms >= 0 && ms < 600_000)
        {
            SampleRtt(TimeSpan.FromMilliseconds(ms));
        }
    }

    // RFC 6298 §2.2-2.3 with clock granularity G = 1 ms.
    private void SampleRtt(TimeSpan r)
    {
        if (r < TimeSpan.Zero)
        {
            return;
        }

        _lastRttSample = r;

        if (!_hasRtt)
        {
            _srtt = r;
            _rttVar = r / 2;
            _hasRtt = true;
        }
        else
        {
            TimeSpan delta = _srtt > r ? _srtt - r : r - _srtt;
            _rttVar = (_rttVar * 3 + delta) / 4;
            _srtt = (_srtt * 7 + r) / 8;
        }

        TimeSpan k = Max(_rttVar * 4, TimeSpan.FromMilliseconds(1));
        _rto = Min(Max(_srtt + k, _options.MinRto), _options.MaxRto);
    }

    private uint TsNow(TimeSpan now) => (uint)(long)now.TotalMilliseconds + _tsOffset;

    private TimeSpan? KeepAliveDeadline()
    {
        if (_options.KeepAliveIdle is not { } idle ||
            State is not (TcpState.Established or TcpState.CloseWait or TcpState.FinWait2) ||
            _sndMax != _sndUna)
        {
            return null;
        }

        return _keepAliveProbesSent == 0 ? _lastReceived + idle : _lastProbe + _options.KeepAliveInterval;
    }

    private void EnterTimeWait(TimeSpan now)
    {
        State = TcpState.TimeWait;
        _rtoDeadline = null;
        _persistDeadline = null;
        _timeWaitDeadline = now + _options.TimeWait;
    }

    private void EnterClosed()
    {
        if (State != TcpState.Closed)
        {
            _events |= TcpEvents.Closed;
        }

        State = TcpState.Closed;
        _rtoDeadline = null;
        _persistDeadline = null;
        _delayedAckDeadline = null;
        _timeWaitDeadline = null;
        _ackNow = false;
    }

    private static TimeSpan? Earliest(TimeSpan? a, TimeSpan? b)
        => a is null ? b : b is null ? a : (a.Value <= b.Value ? a : b);

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a <= b ? a : b;

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a >= b ? a : b;
}
