using Microsoft.Extensions.Logging;

namespace Beemesh.Agent.Mesh;

/// <summary>Log lines of the node port.</summary>
internal static partial class NodeListenerLog
{
    [LoggerMessage(EventId = 4200, Level = LogLevel.Information, Message = "node port: connection from {Peer} refused: {Reason}")]
    public static partial void HandshakeFailed(ILogger logger, string peer, string reason);
}
