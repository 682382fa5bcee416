namespace Beemesh.Linearizability;

/// <summary>
/// The state of one key in the sequential model: absent, or present with a value and an ETag. The
/// ETag is null when the key was last set by a write whose ETag no one has seen yet (APIs such as
/// Dapr's return none from a save): such an ETag is known only to differ from every ETag seen before,
/// and the first read that reports one fixes it.
/// </summary>
/// <param name="Exists">True when the key holds a value.</param>
/// <param name="Value">The value (null when absent).</param>
/// <param name="Etag">The ETag (null when absent or not yet seen).</param>
public readonly record struct RegisterState(bool Exists, string? Value, string? Etag)
{
    /// <summary>The state of a key no one has written.</summary>
    public static RegisterState Absent => default;

    /// <summary>A present key.</summary>
    public static RegisterState Present(string value, string? etag) => new(true, value, etag);

    /// <summary>True when the key is present and its ETag is known to be <paramref name="etag"/>.</summary>
    public bool HasEtag(string? etag) => Exists && Etag is not null && string.Equals(Etag, etag, StringComparison.Ordinal);

    /// <inheritdoc />
    public override string ToString() => Exists ? $"\"{Value}\"@{Etag ?? "(unseen)"}" : "absent";
}
