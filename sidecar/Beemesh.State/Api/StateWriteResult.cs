namespace Beemesh.State.Api;

/// <summary>The outcome of <see cref="Eventual.EventualStore.Apply(System.Collections.Generic.IReadOnlyList{StateOperation})"/> and the key that decided it.</summary>
/// <param name="Status">Applied, or why nothing was.</param>
/// <param name="Key">The scoped key of the write that failed; null when applied.</param>
public readonly record struct StateWriteResult(StateWriteStatus Status, string? Key)
{
    /// <summary>Every write applied.</summary>
    public static StateWriteResult Applied => new(StateWriteStatus.Applied, null);
}
