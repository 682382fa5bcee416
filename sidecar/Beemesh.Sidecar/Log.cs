using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar;

/// <summary>Source-generated log messages of the sidecar; every event id lives here.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning,
        Message = "audit action={Action} caller={Caller} port={Port} policy={Policy} rule={Rule} trigger={Trigger} reason=\"{Reason}\" duration_ms={DurationMs} bytes_in={BytesIn} bytes_out={BytesOut}")]
    public static partial void Audit(ILogger logger, string action, string caller, int port, string? policy, int rule, string trigger, string reason, long durationMs, long bytesIn, long bytesOut);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Debug, Message = "tunnel flow from {Caller} to port {Port} ended: {Error}")]
    public static partial void FlowEnded(ILogger logger, string caller, int port, string? error);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Warning, Message = "outbound flow to {Destination} failed: {Error}")]
    public static partial void OutboundFailed(ILogger logger, string destination, string error);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "guest connection to port {Port} failed: {Error}")]
    public static partial void GuestConnectFailed(ILogger logger, int port, string error);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Warning,
        Message = "audit action={Action} caller={Caller} port={Port} method={Method} path={Path} policy={Policy} rule={Rule} trigger={Trigger} reason=\"{Reason}\" duration_ms={DurationMs}")]
    public static partial void AuditHttp(ILogger logger, string action, string caller, int port, string method, string? path, string? policy, int rule, string trigger, string reason, long durationMs);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Debug, Message = "HTTP request {Method} {Path} from {Caller} to port {Port} failed upstream: {Error}")]
    public static partial void HttpForwardFailed(ILogger logger, string method, string path, string caller, int port, string error);

    [LoggerMessage(EventId = 4007, Level = LogLevel.Debug, Message = "HTTP tunnel flow from {Caller} to port {Port} ended: {Error}")]
    public static partial void HttpFlowEnded(ILogger logger, string caller, int port, string? error);

    [LoggerMessage(EventId = 4010, Level = LogLevel.Warning, Message = "refused {Caller} to port {Port}: not in the mesh directory")]
    public static partial void UnknownCaller(ILogger logger, string caller, int port);

    [LoggerMessage(EventId = 4012, Level = LogLevel.Warning, Message = "refused {Caller} to port {Port}: its SVID was issued by node {Node}, which was removed from the mesh")]
    public static partial void RevokedIssuer(ILogger logger, string caller, int port, string node);

    [LoggerMessage(EventId = 4013, Level = LogLevel.Warning, Message = "closed {Count} tunnel connection(s) to peers whose SVID was issued by a node removed from the mesh")]
    public static partial void OutboundRevoked(ILogger logger, int count);

    [LoggerMessage(EventId = 4011, Level = LogLevel.Debug, Message = "kept {Caller} to port {Port}: handshake SVID expired at {NotAfter:O}, identity still current; next check at {NextCheck:O}")]
    public static partial void KeptPastSvidExpiry(ILogger logger, string caller, int port, DateTimeOffset notAfter, DateTimeOffset nextCheck);

    [LoggerMessage(EventId = 4020, Level = LogLevel.Warning, Message = "agent unreachable ({Error}); enforcing last policies ({Count} policies, version {Version}) and refusing callers not in the last mesh directory")]
    public static partial void AgentUnreachable(ILogger logger, string error, int count, long version);

    [LoggerMessage(EventId = 4021, Level = LogLevel.Warning, Message = "agent is back (policy version {Version})")]
    public static partial void AgentBack(ILogger logger, long version);

    [LoggerMessage(EventId = 4022, Level = LogLevel.Warning, Message = "the agent does not know workload {Id} (it restarted without it); registering {Name}.{Namespace} again")]
    public static partial void Reregistering(ILogger logger, string id, string name, string @namespace);

    [LoggerMessage(EventId = 4023, Level = LogLevel.Warning, Message = "registered again as {Id} ({SpiffeId}, mesh address {MeshAddress})")]
    public static partial void Reregistered(ILogger logger, string id, string spiffeId, string meshAddress);

    [LoggerMessage(EventId = 4024, Level = LogLevel.Warning, Message = "registering again failed: {Error}")]
    public static partial void ReregisterFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 4030, Level = LogLevel.Warning, Message = "QUIC to node {Node} at {Endpoint} failed ({Error}); this flow and the next ones to that node use TLS over TCP until {Until:O}")]
    public static partial void QuicFallback(ILogger logger, string node, string endpoint, string error, DateTimeOffset until);

    [LoggerMessage(EventId = 4031, Level = LogLevel.Warning, Message = "closed {Count} QUIC connection(s) to nodes removed from the mesh")]
    public static partial void QuicRevoked(ILogger logger, int count);

    [LoggerMessage(EventId = 4025, Level = LogLevel.Debug, Message = "TLS warm-up: self-handshake {Outcome} in {ElapsedMs} ms")]
    public static partial void TlsWarmedUp(ILogger logger, string outcome, long elapsedMs);

    [LoggerMessage(EventId = 4026, Level = LogLevel.Warning, Message = "cannot listen for mesh service {Service} on {Address}:{Port}: {Error}")]
    public static partial void ServiceListenFailed(ILogger logger, string service, string address, int port, string error);

    [LoggerMessage(EventId = 4027, Level = LogLevel.Information, Message = "tunnel handoff unavailable ({Reason}): the agent relays this workload's cross-node connections")]
    public static partial void TunnelHandoffUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 4028, Level = LogLevel.Warning, Message = "tunnel handoff: the agent closed the channel; {Cut} connections it handed over were cut")]
    public static partial void TunnelHandoffLost(ILogger logger, int cut);

    [LoggerMessage(EventId = 4032, Level = LogLevel.Debug, Message = "state API: first connection, server started")]
    public static partial void StateApiStarted(ILogger logger);

    [LoggerMessage(EventId = 4033, Level = LogLevel.Error, Message = "state API: the server did not start on the first connection ({Error}); its ports are closed")]
    public static partial void StateApiFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 4034, Level = LogLevel.Warning, Message = "tunnel connection with {Peer} closed ({Reason}); {Flows} flow(s) on it reset")]
    public static partial void TunnelLost(ILogger logger, string peer, string reason, int flows);
}
