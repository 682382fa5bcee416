namespace Beemesh.Netstack.Tcp;

/// <summary>Connection states of RFC 9293 §3.3.2.</summary>
public enum TcpState
{
    /// <summary>No connection (initial, after an abort, a reset or the end of TIME-WAIT).</summary>
    Closed,
    /// <summary>Waiting for a SYN; kept for completeness, the driver validates SYNs itself.</summary>
    Listen,
    /// <summary>Our SYN is out, waiting for the peer's SYN(-ACK).</summary>
    SynSent,
    /// <summary>Peer's SYN received and our SYN-ACK sent, waiting for its ACK.</summary>
    SynReceived,
    /// <summary>Data flows both ways.</summary>
    Established,
    /// <summary>We closed (FIN queued or sent); our FIN is not yet acknowledged.</summary>
    FinWait1,
    /// <summary>Our FIN is acknowledged; the peer may still send.</summary>
    FinWait2,
    /// <summary>The peer finished; we may still send.</summary>
    CloseWait,
    /// <summary>Both sides sent FIN simultaneously; ours is not yet acknowledged.</summary>
    Closing,
    /// <summary>The peer finished first, then we did; waiting for the ACK of our FIN.</summary>
    LastAck,
    /// <summary>Both FINs acknowledged; lingering 2*MSL to answer a retransmitted FIN.</summary>
    TimeWait,
}
