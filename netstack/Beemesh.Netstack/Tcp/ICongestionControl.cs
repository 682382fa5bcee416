namespace Beemesh.Netstack.Tcp;

/// <summary>
/// The sender's congestion window and slow-start threshold, and how they move. A
/// <see cref="TcpConnection"/> owns one controller and keeps loss detection and recovery itself
/// (duplicate ACK counting, the SACK scoreboard, the RFC 6582 recover point, retransmission):
/// it tells the controller what happened and reads back how much may be in flight. All sizes
/// are bytes; <c>now</c> is the connection's clock. Loop thread only, like the connection.
/// </summary>
/// <remarks>
/// Call order: <see cref="Initialize"/> once the segment size is known (again if it changes
/// before data flows), then any sequence of the other calls. Outside recovery every cumulative
/// ACK of new data is <see cref="OnAck"/>; a fast retransmit opens recovery
/// (<see cref="OnFastRetransmit"/>), during which ACKs are <see cref="OnRecoveryDuplicateAck"/>
/// or <see cref="OnPartialAck"/> until <see cref="OnRecoveryExit"/>; a retransmission timeout
/// (<see cref="OnRetransmissionTimeout"/>) may come at any time and ends recovery. Each ACK
/// of new data is announced by <see cref="OnAckSample"/> first.
/// </remarks>
public interface ICongestionControl
{
    /// <summary>Bytes the sender may have in flight (cwnd); never below one segment.</summary>
    int CongestionWindow { get; }

    /// <summary>Slow-start threshold (ssthresh): below it the window grows by slow start.</summary>
    int SlowStartThreshold { get; }

    /// <summary>Sets the sender's segment size and the initial window (RFC 6928: ten segments).</summary>
    void Initialize(int mss);

    /// <summary>
    /// Every ACK of new data, in or out of recovery, just before <see cref="OnAck"/>,
    /// <see cref="OnPartialAck"/> or <see cref="OnRecoveryExit"/>: its acknowledgment number,
    /// the highest sequence number sent so far (SND.MAX) and the RTT sample it gave, if any
    /// (none for retransmitted data, Karn's rule). For delay-based decisions such as HyStart++;
    /// controllers that need none ignore it.
    /// </summary>
    void OnAckSample(uint ack, uint sendMax, TimeSpan? rttSample)
    {
    }

    /// <summary>A cumulative ACK of <paramref name="ackedBytes"/> new bytes outside recovery; <paramref name="smoothedRtt"/> is zero before the first sample.</summary>
    void OnAck(long ackedBytes, TimeSpan smoothedRtt, TimeSpan now);

    /// <summary>Loss detected by duplicate ACKs or SACK: reduce the window and enter recovery. <paramref name="flightSize"/> is SND.MAX - SND.UNA.</summary>
    void OnFastRetransmit(long flightSize, bool sack, TimeSpan now);

    /// <summary>Another duplicate ACK during recovery without SACK: a segment left the network (RFC 6582 §3.2 step 4).</summary>
    void OnRecoveryDuplicateAck();

    /// <summary>An ACK during recovery that does not cover the recover point (RFC 6582 §3.2 step 5).</summary>
    void OnPartialAck(long ackedBytes);

    /// <summary>The ACK that covers the recover point ends recovery (RFC 6582 §3.2 step 3); <paramref name="flightSize"/> is what is still outstanding.</summary>
    void OnRecoveryExit(long flightSize);

    /// <summary>The retransmission timer fired (RFC 5681 §3.1, RFC 6298 §5); <paramref name="firstTimeout"/> is false for backed-off repeats of the same loss.</summary>
    void OnRetransmissionTimeout(long flightSize, bool firstTimeout, TimeSpan now);
}
