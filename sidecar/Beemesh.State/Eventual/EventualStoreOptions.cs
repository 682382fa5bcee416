namespace Beemesh.State.Eventual;

/// <summary>Settings of one eventual store replica.</summary>
public sealed class EventualStoreOptions
{
    /// <summary>Most bytes of keys, values and per-entry overhead a replica holds; writes past it are refused. Default 256 MiB.</summary>
    public long MaxBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>
    /// How long a delete's tombstone (and an expired value) is kept before garbage collection, so
    /// that replicas which have not heard of the delete yet learn it rather than bring the old value
    /// back. Default 1 hour: a replica cut off for longer may resurrect a deleted key.
    /// </summary>
    public TimeSpan TombstoneGrace { get; set; } = TimeSpan.FromHours(1);
}
