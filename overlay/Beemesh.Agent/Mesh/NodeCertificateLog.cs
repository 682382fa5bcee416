using Microsoft.Extensions.Logging;

namespace Beemesh.Agent.Mesh;

/// <summary>Log lines of node certificate reuse and renewal; event ids 4230-4239 belong to them.</summary>
internal static partial class NodeCertificateLog
{
    [LoggerMessage(EventId = 4230, Level = LogLevel.Information, Message = "node certificates renewed: node SVID serial {Serial}, valid until {NotAfter:u}, next renewal {RenewAt:u}")]
    public static partial void Renewed(ILogger logger, string serial, DateTimeOffset notAfter, DateTimeOffset renewAt);

    [LoggerMessage(EventId = 4231, Level = LogLevel.Warning, Message = "node certificate renewal failed: {Reason}; next attempt at {RetryAt:u}")]
    public static partial void RenewalFailed(ILogger logger, string reason, DateTimeOffset retryAt);

    [LoggerMessage(EventId = 4232, Level = LogLevel.Information, Message = "node SVID issued anew: {Reason}")]
    public static partial void Reissued(ILogger logger, string reason);
}
