using Beemesh.Authorization;

namespace Beemesh.Sidecar.Inbound;

/// <summary>An <see cref="IPolicySource"/> whose policies are set by code (the CLI's file watcher, tests).</summary>
public sealed class InMemoryPolicySource : IPolicySource
{
    private volatile IReadOnlyList<AuthorizationPolicy> _current;

    /// <summary>Creates a source holding <paramref name="initial"/> (none when null: everything allowed).</summary>
    public InMemoryPolicySource(IReadOnlyList<AuthorizationPolicy>? initial = null) => _current = initial ?? [];

    /// <inheritdoc />
    public IReadOnlyList<AuthorizationPolicy> Current => _current;

    /// <inheritdoc />
    public event EventHandler? Changed;

    /// <summary>Replaces the policy set and raises <see cref="Changed"/> synchronously.</summary>
    public void Set(IReadOnlyList<AuthorizationPolicy> policies)
    {
        ArgumentNullException.ThrowIfNull(policies);
        _current = policies;
        Changed?.Invoke(this, EventArgs.Empty);
    }
}
