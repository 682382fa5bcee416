namespace Beemesh.State.Api;

/// <summary>Dapr's concurrency option for a write (<c>options.concurrency</c>).</summary>
public enum StateConcurrency
{
    /// <summary>Not given: an ETag, when present, is checked; without one the write always applies.</summary>
    Unspecified = 0,

    /// <summary><c>first-write</c>: an ETag must match; without one, an upsert applies only where the key is absent.</summary>
    FirstWrite = 1,

    /// <summary><c>last-write</c>: the write applies whatever the ETag says.</summary>
    LastWrite = 2,
}
