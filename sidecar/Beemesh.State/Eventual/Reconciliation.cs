namespace Beemesh.State.Eventual;

/// <summary>What a replica does after reading a peer's <see cref="BucketSummary"/>.</summary>
/// <param name="Send">Its entries the peer lacks or holds an older write of.</param>
/// <param name="Want">Keys of which the peer holds a write this replica lacks or has an older one of.</param>
public sealed record Reconciliation(IReadOnlyList<StateEntry> Send, IReadOnlyList<string> Want)
{
    /// <summary>Whether there is nothing to exchange.</summary>
    public bool IsEmpty => Send.Count == 0 && Want.Count == 0;
}
