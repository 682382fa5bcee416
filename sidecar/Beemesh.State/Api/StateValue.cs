namespace Beemesh.State.Api;

/// <summary>What a read returns for a present key.</summary>
/// <param name="Value">The stored bytes (owned by the store: never modify).</param>
/// <param name="ETag">The version clients pass back for a conditional write.</param>
/// <param name="ExpiresAt">When the value expires, if it has a time to live.</param>
public sealed record StateValue(byte[] Value, string ETag, DateTimeOffset? ExpiresAt);
