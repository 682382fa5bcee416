using System.Globalization;
using Beemesh.State.Api;

namespace Beemesh.Sidecar.State;

/// <summary>Parsing shared by the HTTP and gRPC front ends: Dapr's option and metadata strings.</summary>
internal static class StateRequestParser
{
    /// <summary>Dapr's <c>metadata.ttlInSeconds</c>: a whole number of seconds, -1 (or absent) for never.</summary>
    public static bool TryParseTtl(string? text, out TimeSpan? ttl, out string? error)
    {
        ttl = null;
        error = null;
        if (string.IsNullOrEmpty(text))
        {
            return true;
        }

        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long seconds) ||
            seconds < -1 || seconds > int.MaxValue)
        {
            error = $"ttlInSeconds must be a whole number of seconds, -1 for none: '{text}'";
            return false;
        }

        if (seconds >= 0)
        {
            ttl = TimeSpan.FromSeconds(seconds);
        }

        return true;
    }

    /// <summary>Dapr's <c>options.concurrency</c> strings: <c>first-write</c>, <c>last-write</c> or empty.</summary>
    public static bool TryParseConcurrency(string? text, out StateConcurrency concurrency)
    {
        switch (text)
        {
            case null or "":
                concurrency = StateConcurrency.Unspecified;
                return true;
            case "first-write":
                concurrency = StateConcurrency.FirstWrite;
                return true;
            case "last-write":
                concurrency = StateConcurrency.LastWrite;
                return true;
            default:
                concurrency = StateConcurrency.Unspecified;
                return false;
        }
    }

    /// <summary>Dapr's <c>options.consistency</c> strings; both are accepted (an eventual store serves both alike).</summary>
    public static bool IsConsistency(string? text) => text is null or "" or "eventual" or "strong";
}
