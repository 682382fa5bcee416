using Beemesh.Agent.Client;
using Beemesh.Authorization;
using Beemesh.Sidecar.Inbound;

namespace Beemesh.Sidecar.Mesh;

/// <summary>
/// The sidecar's view of the agent's policies: a long-poll watch that wakes as soon as the agent
/// stores a change, so live connections are re-evaluated within milliseconds of it.
/// </summary>
public sealed class AgentPolicySource : IPolicySource, IDisposable
{
    private readonly AgentClient _agent;
    private readonly CancellationTokenSource _stop = new();
    private volatile IReadOnlyList<AuthorizationPolicy> _current = [];
    private long _version = -1;

    /// <summary>Starts watching <paramref name="agent"/>'s policies.</summary>
    public AgentPolicySource(AgentClient agent)
    {
        _agent = agent;
        _ = WatchLoopAsync();
    }

    /// <inheritdoc />
    public IReadOnlyList<AuthorizationPolicy> Current => _current;

    /// <inheritdoc />
    public event EventHandler? Changed;

    /// <summary>The agent's policy version this view reflects (-1 before the first answer).</summary>
    public long Version => Interlocked.Read(ref _version);

    /// <summary>Loads the current policies once, before the sidecar accepts connections.</summary>
    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        var set = await _agent.ListPoliciesAsync(cancellationToken).ConfigureAwait(false);
        Apply(set);
    }

    private async Task WatchLoopAsync()
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var set = await _agent.WatchPoliciesAsync(Version, TimeSpan.FromSeconds(25), _stop.Token).ConfigureAwait(false);
                Apply(set);
                delay = TimeSpan.FromMilliseconds(100);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HttpRequestException or AgentApiException or OperationCanceledException)
            {
                try
                {
                    await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }

    private void Apply(PolicySet set)
    {
        if (set.Version <= Version)
        {
            return;
        }

        // The agent validated every document; a document it stored always loads.
        if (PolicyLoader.Load(set.ToYaml(), out var policies, out _))
        {
            _current = policies;
        }
        else if (set.Policies.Count == 0)
        {
            _current = [];
        }

        Interlocked.Exchange(ref _version, set.Version);
        Changed?.Invoke(this, EventArgs.Empty);
    }

    /// <summary>Stops the watch.</summary>
    public void Dispose() => _stop.Cancel();
}
