using Microsoft.AspNetCore.Connections;

namespace Beemesh.Sidecar.Telemetry;

/// <summary>
/// Times Kestrel's server-side TLS handshakes with two connection middlewares around
/// <c>UseHttps</c>: the outer one stamps the start, the inner one runs once the handshake has
/// completed and records the duration. A connection that ends without reaching the inner one
/// failed its handshake (or was abandoned before finishing it) and is counted as a failure.
/// </summary>
public static class HandshakeTimer
{
    private static readonly object StartKey = new();
    private static readonly object DoneKey = new();

    /// <summary>The outer middleware: runs before TLS and counts a failure when the handshake never completed.</summary>
    public static async Task AroundAsync(ConnectionDelegate next, ConnectionContext context, TimeProvider time, HandshakeHistogram histogram)
    {
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(histogram);
        context.Items[StartKey] = time.GetTimestamp();
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            if (!context.Items.ContainsKey(DoneKey))
            {
                histogram.Fail();
            }
        }
    }

    /// <summary>The inner middleware: runs after the handshake and records its duration.</summary>
    public static Task CompletedAsync(ConnectionDelegate next, ConnectionContext context, TimeProvider time, HandshakeHistogram histogram)
    {
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(histogram);
        if (context.Items.TryGetValue(StartKey, out object? start) && start is long timestamp)
        {
            histogram.Observe(time.GetElapsedTime(timestamp));
        }

        context.Items[DoneKey] = true;
        return next(context);
    }
}
