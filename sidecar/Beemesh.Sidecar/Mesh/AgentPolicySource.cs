using Beemesh.Agent.Client;
using Beemesh.Authorization;
using Beemesh.Sidecar.Inbound;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Sidecar.Mesh;

/// <summary>
/// The sidecar's view of the agent's policies: a long-poll watch that wakes as soon as the agent
/// stores a change, so live connections are re-evaluated within milliseconds of it.
/// </summary>
/// <remarks>
/// While the agent cannot be reached the last policy set stays in force (never an empty set, which
/// would allow everything); the sidecar logs once that it is enforcing it, and once that the agent is
/// back. Each answer carries the agent's epoch (random per agent start): a set from a new epoch is
/// taken whatever its version, so a restarted agent is never ignored.
/// </remarks>
public sealed class AgentPolicySource : IPolicySource, IDisposable
{
    private readonly AgentClient _agent;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _applying = new();
    private volatile IReadOnlyList<AuthorizationPolicy> _current = [];
    private string? _epoch;
    private long _version = -1;
    private bool _unreachable;

    /// <summary>Starts watching <paramref name="agent"/>'s policies.</summary>
    public AgentPolicySource(AgentClient agent, ILogger? logger = null, TimeProvider? timeProvider = null)
    {
        _agent = agent;
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _ = WatchLoopAsync();
    }

    /// <inheritdoc />
    public IReadOnlyList<AuthorizationPolicy> Current => _current;

    /// <inheritdoc />
    public event EventHandler? Changed;

    /// <summary>The agent's policy version this view reflects (-1 before the first answer).</summary>
    public long Version => Interlocked.Read(ref _version);

    /// <summary>The agent epoch this view comes from (null before the first answer).</summary>
    public string? Epoch => Volatile.Read(ref _epoch);

    /// <summary>Whether the last attempt to reach the agent failed (the last policies are enforced meanwhile).</summary>
    public bool AgentUnreachable => Volatile.Read(ref _unreachable);

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
                var set = await _agent.WatchPoliciesAsync(Epoch, Version, TimeSpan.FromSeconds(25), _stop.Token).ConfigureAwait(false);
                if (Volatile.Read(ref _unreachable))
                {
                    Volatile.Write(ref _unreachable, false);
                    Log.AgentBack(_logger, set.Version);
                }

                Apply(set);
                delay = TimeSpan.FromMilliseconds(100);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HttpRequestException or AgentApiException or OperationCanceledException or System.Text.Json.JsonException)
            {
                if (!Volatile.Read(ref _unreachable))
                {
                    Volatile.Write(ref _unreachable, true);
                    Log.AgentUnreachable(_logger, e.Message, _current.Count, Version);
                }

                try
                {
                    await Task.Delay(delay, _time, _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
        }
    }

    private void Apply(PolicySet set)
    {
        lock (_applying)
        {
            bool sameEpoch = set.Epoch is null || set.Epoch == _epoch;
            if (sameEpoch && set.Version <= Version)
            {
                return;
            }

            // The agent validated every document; a document it stored always loads. A set that does
            // not load keeps the last one in force rather than allowing everything.
            if (PolicyLoader.Load(set.ToYaml(), out var policies, out _))
            {
                _current = policies;
            }
            else if (set.Policies.Count == 0)
            {
                _current = [];
            }

            Volatile.Write(ref _epoch, set.Epoch);
            Interlocked.Exchange(ref _version, set.Version);
        }

        Changed?.Invoke(this, EventArgs.Empty);
    }

    /// <summary>Stops the watch.</summary>
    public void Dispose() => _stop.Cancel();
}
