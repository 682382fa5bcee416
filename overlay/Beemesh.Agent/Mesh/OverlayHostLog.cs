using Microsoft.Extensions.Logging;

namespace Beemesh.Agent.Mesh;

/// <summary>Log lines of the overlay host.</summary>
internal static partial class OverlayHostLog
{
    [LoggerMessage(EventId = 4210, Level = LogLevel.Information, Message = "overlay link {Peer} closed or refused: {Reason}")]
    public static partial void LinkRefused(ILogger logger, string peer, string reason);

    [LoggerMessage(EventId = 4211, Level = LogLevel.Warning, Message = "overlay record {Record} from {Peer} refused: {Reason}")]
    public static partial void RecordRefused(ILogger logger, string record, string peer, string reason);

    [LoggerMessage(EventId = 4212, Level = LogLevel.Warning, Message = "this node's mesh address block moves from {Old} to {New} ({Why}); its workloads are re-addressed")]
    public static partial void MeshBlockMoved(ILogger logger, string old, string @new, string why);

    [LoggerMessage(EventId = 4213, Level = LogLevel.Warning, Message = "route {Route} of node {Node} refused: {Reason}")]
    public static partial void RouteRefused(ILogger logger, string route, string node, string reason);
}
