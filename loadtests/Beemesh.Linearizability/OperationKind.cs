namespace Beemesh.Linearizability;

/// <summary>What a client asked of one key of a key-value store.</summary>
public enum OperationKind
{
    /// <summary>Get the key's value and ETag (or learn that it is absent).</summary>
    Read,

    /// <summary>Set the key's value unconditionally (Dapr's last-write).</summary>
    Write,

    /// <summary>Set the key's value if its current ETag is <see cref="KvOperation.ExpectedEtag"/> (Dapr's first-write with an ETag).</summary>
    CompareAndSet,

    /// <summary>Set the key's value only if the key is absent (Dapr's first-write without an ETag).</summary>
    Create,

    /// <summary>Remove the key; with <see cref="KvOperation.ExpectedEtag"/> only if its ETag matches (If-Match).</summary>
    Delete,
}
