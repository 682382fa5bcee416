namespace Beemesh.Overlay.Simulation;

/// <summary>How the simulated network loses packets.</summary>
public enum LossModel
{
    /// <summary>
    /// What the overlay runs on: every link is a TCP (TLS) connection. A transmission is lost with
    /// the loss probability and sent again after the retransmission timeout (Linux: the round trip
    /// plus at least 200 ms, doubling on each further loss); messages on one link arrive in the
    /// order they were sent, a later one waiting behind a retransmitted one, and none is dropped
    /// while the receiver lives. See <see cref="TcpLinks"/>.
    /// </summary>
    Tcp,

    /// <summary>
    /// Datagram links, as UDP: each message is lost outright with the loss probability and messages
    /// on one link may overtake each other (each draws its own latency). Kept to compare with runs
    /// made before the links were modelled as TCP.
    /// </summary>
    Drop,
}
