using Beemesh.Authorization;

namespace Beemesh.Sidecar.Inbound;

/// <summary>The authorization policies currently in force for this workload, and when they change.</summary>
public interface IPolicySource
{
    /// <summary>The current policy set; replaced wholesale on every change, never mutated.</summary>
    IReadOnlyList<AuthorizationPolicy> Current { get; }

    /// <summary>Raised after <see cref="Current"/> changed; live connections are re-authorized from the handler.</summary>
    event EventHandler? Changed;
}
