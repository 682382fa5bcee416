namespace Beemesh.Netstack.Tcp;

/// <summary>Tunables of one <see cref="TcpConnection"/>. Defaults follow Linux and the cited RFCs.</summary>
public sealed class TcpConnectionOptions
{
    /// <summary>Our MSS, advertised in SYN/SYN-ACK; the driver sets it from the MTU. Default 1460.</summary>
    public int Mss = 1460;

    /// <summary>Largest data segment payload; 0 = the effective MSS. Larger values are allowed when the link does TSO (e.g. 65000). Default 0.</summary>
    public int MaxSegmentPayload = 0;

    /// <summary>Our window scale shift count offered in SYN/SYN-ACK (RFC 7323 §2), clamped to 14. Default 7.</summary>
    public int ReceiveWindowScale = 7;

    /// <summary>Cap on the receive window we advertise; the sink's free space is a second cap. Default 4 MiB.</summary>
    public long MaxReceiveWindow = 4 << 20;

    /// <summary>Offer/accept the timestamps option (RFC 7323 §3). Default true.</summary>
    public bool Timestamps = true;

    /// <summary>Offer/accept SACK (RFC 2018); we use the peer's SACK blocks when sending. Default true.</summary>
    public bool Sack = true;

    /// <summary>Lower bound of the retransmission timeout (RFC 6298 §2.4 allows below 1 s, Linux uses 200 ms). Default 200 ms.</summary>
    public TimeSpan MinRto = TimeSpan.FromMilliseconds(200);

    /// <summary>Upper bound of the retransmission timeout, backoff included (RFC 6298 §2.5). Default 60 s.</summary>
    public TimeSpan MaxRto = TimeSpan.FromSeconds(60);

    /// <summary>RTO before the first RTT sample (RFC 6298 §2.1). Default 1 s.</summary>
    public TimeSpan InitialRto = TimeSpan.FromSeconds(1);

    /// <summary>Delayed ACK timeout; an ACK is still sent for every second full segment (RFC 1122 §4.2.3.2, RFC 5681 §4.2). Default 40 ms.</summary>
    public TimeSpan DelayedAck = TimeSpan.FromMilliseconds(40);

    /// <summary>Idle time before the first keepalive probe; null disables keepalive (RFC 1122 §4.2.3.6). Default null.</summary>
    public TimeSpan? KeepAliveIdle = null;

    /// <summary>Time between unanswered keepalive probes. Default 75 s.</summary>
    public TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(75);

    /// <summary>Unanswered keepalive probes after which the connection aborts. Default 9.</summary>
    public int KeepAliveProbes = 9;

    /// <summary>TIME-WAIT duration, 2*MSL (RFC 9293 §3.4.2). Default 60 s.</summary>
    public TimeSpan TimeWait = TimeSpan.FromSeconds(60);

    /// <summary>Consecutive retransmission timeouts after which the connection aborts with RST. Default 15.</summary>
    public int MaxRetransmissions = 15;

    /// <summary>SYN or SYN-ACK retransmissions before giving up. Default 6.</summary>
    public int MaxSynRetries = 6;

    /// <summary>The sender's congestion control; each connection gets its own controller of this kind. Default NewReno.</summary>
    public TcpCongestionControl CongestionControl = TcpCongestionControl.NewReno;

    /// <summary>HyStart++ (RFC 9406) in CUBIC's initial slow start; NewReno ignores it. Default true, as Linux runs HyStart with CUBIC.</summary>
    public bool HyStart = true;
}
