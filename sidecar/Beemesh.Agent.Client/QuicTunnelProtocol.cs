using System.Net.Security;

namespace Beemesh.Agent.Client;

/// <summary>
/// Wire facts of the QUIC tunnel between a caller's sidecar and a destination node, shared by both
/// ends. A node advertises it in its node record (capability <see cref="NodeRecordPayload.QuicCapability"/>
/// and <see cref="NodeRecordPayload.Quic"/>) only when QUIC runs on it. The caller's sidecar holds one
/// QUIC connection per destination node (and SVID of its own), authenticated between its workload
/// SVID (client) and the node's node SVID <c>spiffe://TD/node/NAME</c> (server), ALPN
/// <see cref="ApplicationProtocol"/>; each tunnel connection of the TCP path (the end-to-end TLS
/// between the two workloads' sidecars, carrying HTTP/2 CONNECT streams, one per flow) is one
/// bidirectional stream instead, after a <see cref="TunnelStreamHeader"/>. Error codes are on the
/// wire: append only.
/// </summary>
public static class QuicTunnelProtocol
{
    /// <summary>ALPN of QUIC tunnel connections.</summary>
    public static readonly SslApplicationProtocol ApplicationProtocol = new("beemesh-tunnel/1");

    /// <summary>Normal end, or the other end of the relay went away.</summary>
    public const long ErrorClosed = 0;

    /// <summary>The stream's header was not a valid <see cref="TunnelStreamHeader"/>, or the stream ended before one.</summary>
    public const long ErrorMalformed = 1;

    /// <summary>No workload of the node has the name in the header.</summary>
    public const long ErrorUnknownName = 2;

    /// <summary>The header did not arrive in time.</summary>
    public const long ErrorTimeout = 3;

    /// <summary>The named workload's sidecar could not be reached.</summary>
    public const long ErrorUnreachable = 4;

    /// <summary>The caller's node, or the node that issued its SVID, was removed from the mesh.</summary>
    public const long ErrorRevoked = 5;

    /// <summary>The connection was refused (its caller was not authenticated).</summary>
    public const long ErrorRefused = 6;

    /// <summary>What is said when QUIC is asked for and libmsquic is missing.</summary>
    public const string NotSupportedMessage =
        "QUIC is not supported in this process: libmsquic (2.2.2 or newer) was not found; install the libmsquic package from Microsoft's package repository (packages.microsoft.com)";

    /// <summary>A QUIC tunnel connection with no traffic and no keep-alive answer for this long is closed (60 s).</summary>
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Both ends send a keep-alive this often, so an idle connection stays open and a dead peer is noticed (15 s).</summary>
    public static readonly TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(15);
}
