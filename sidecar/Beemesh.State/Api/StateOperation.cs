namespace Beemesh.State.Api;

/// <summary>One write of a save, delete or transaction, on a key already scoped to its app.</summary>
/// <param name="Key">The scoped key (<c>appid||key</c>).</param>
/// <param name="Value">The bytes to store; null for a delete.</param>
/// <param name="ETag">The ETag the current value must carry, or null/empty for none.</param>
/// <param name="Concurrency">First-write or last-write (Dapr's <c>options.concurrency</c>).</param>
/// <param name="TimeToLive">When the value expires (Dapr's <c>metadata.ttlInSeconds</c>); null for never.</param>
public sealed record StateOperation(string Key, byte[]? Value, string? ETag, StateConcurrency Concurrency, TimeSpan? TimeToLive)
{
    /// <summary>Whether this deletes the key.</summary>
    public bool IsDelete => Value is null;

    /// <summary>An upsert.</summary>
    public static StateOperation Upsert(string key, byte[] value, string? etag = null, StateConcurrency concurrency = StateConcurrency.Unspecified, TimeSpan? timeToLive = null) =>
        new(key, value ?? throw new ArgumentNullException(nameof(value)), etag, concurrency, timeToLive);

    /// <summary>A delete.</summary>
    public static StateOperation Delete(string key, string? etag = null, StateConcurrency concurrency = StateConcurrency.Unspecified) =>
        new(key, null, etag, concurrency, null);
}
