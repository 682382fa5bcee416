namespace Beemesh.Netstack.Tcp;

/// <summary>What happened on a connection since the driver last called <c>TakeEvents</c>.</summary>
[Flags]
public enum TcpEvents
{
    /// <summary>Nothing.</summary>
    None = 0,
    /// <summary>The three-way handshake completed.</summary>
    Established = 1,
    /// <summary>The receive sink was given bytes.</summary>
    DataReceived = 2,
    /// <summary><see cref="ITcpSendSource.Discard"/> was called: acknowledged bytes left the source.</summary>
    SendSpaceFreed = 4,
    /// <summary>The peer's FIN arrived in order: the driver shuts down the host socket's write side.</summary>
    PeerFinished = 8,
    /// <summary>A RST was received, or the connection aborted after retries: the driver closes the host socket.</summary>
    Reset = 16,
    /// <summary>The connection reached Closed (or TIME-WAIT expired): the driver may forget the flow.</summary>
    Closed = 32,
}
