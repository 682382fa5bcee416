namespace Beemesh.Identity.Join;

/// <summary>What one join connection came to, as <see cref="JoinServer"/> logged it.</summary>
/// <param name="Joined">True when a node joined.</param>
/// <param name="Refusal">Why not, when <paramref name="Joined"/> is false (null for a connection that failed before any request).</param>
/// <param name="NodeName">The node name requested, when one was read.</param>
/// <param name="Message">The one line logged for it.</param>
public sealed record JoinServerResult(bool Joined, JoinRefusal? Refusal, string? NodeName, string Message);
