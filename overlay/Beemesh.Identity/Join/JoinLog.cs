using Microsoft.Extensions.Logging;

namespace Beemesh.Identity.Join;

/// <summary>Log lines of the join exchange; event ids 4100-4199 belong to it.</summary>
internal static partial class JoinLog
{
    [LoggerMessage(EventId = 4100, Level = LogLevel.Information, Message = "node {NodeName} joined (token {TokenId})")]
    public static partial void Joined(ILogger logger, string nodeName, string tokenId);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Information, Message = "node {NodeName} renewed its node certificates")]
    public static partial void Renewed(ILogger logger, string nodeName);

    [LoggerMessage(EventId = 4101, Level = LogLevel.Warning, Message = "{Line}")]
    public static partial void Refused(ILogger logger, string line);
}
