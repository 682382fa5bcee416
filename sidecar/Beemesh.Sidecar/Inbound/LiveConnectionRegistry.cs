using System.Collections.Concurrent;
using Beemesh.Authorization;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Sidecar.Inbound;

/// <summary>
/// Continuous authorization: every live tunnelled inbound connection, re-authorized when the
/// policies change, when the trust bundle changes (<see cref="X509Source.Updated"/>) and when a
/// caller's SVID expires (a timer on the earliest NotAfter). A connection no longer allowed is
/// revoked at once, on the thread that reported the change, with one audit record; so the bound
/// is the time to walk the live set, not a polling period.
/// </summary>
public sealed class LiveConnectionRegistry : IDisposable
{
    /// <summary>Trigger names used in audit records.</summary>
    public const string TriggerConnect = "connect", TriggerPolicy = "policy-changed", TriggerBundle = "bundle-changed", TriggerExpiry = "svid-expired";

    private readonly ConcurrentDictionary<LiveConnection, byte> _live = new();
    private readonly IPolicySource _policies;
    private readonly X509Source _source;
    private readonly PolicyEvaluator _evaluator;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ITimer _expiryTimer;
    private readonly Lock _reevaluating = new();

    /// <summary>Creates a registry and subscribes to policy and bundle changes.</summary>
    public LiveConnectionRegistry(IPolicySource policies, X509Source source, PolicyEvaluator? evaluator = null, ILogger? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(policies);
        ArgumentNullException.ThrowIfNull(source);
        _policies = policies;
        _source = source;
        _evaluator = evaluator ?? PolicyEvaluator.Default;
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? source.TimeProvider;
        _expiryTimer = _time.CreateTimer(static state => ((LiveConnectionRegistry)state!).Reevaluate(TriggerExpiry), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _policies.Changed += OnPolicyChanged;
        _source.Updated += OnBundleChanged;
    }

    /// <summary>Raised for every audit record (after it was logged).</summary>
    public event EventHandler<AuditRecord>? Audited;

    /// <summary>Number of live connections.</summary>
    public int Count => _live.Count;

    /// <summary>A snapshot of the live connections.</summary>
    public IReadOnlyCollection<LiveConnection> Connections => [.. _live.Keys];

    /// <summary>Decides <paramref name="request"/> against the current policies.</summary>
    public AuthorizationDecision Authorize(AuthorizationRequest request) => _evaluator.Evaluate(_policies.Current, request);

    /// <summary>Tracks <paramref name="connection"/> until the returned handle is disposed.</summary>
    public IDisposable Add(LiveConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        _live.TryAdd(connection, 0);
        ScheduleExpiry();
        // A change that raced with the CONNECT (after Authorize, before Add) must not be missed.
        string? why = Check(connection, out AuthorizationDecision decision, out string trigger);
        if (why is not null)
        {
            Revoke(connection, decision, trigger, why);
        }

        return new Registration(this, connection);
    }

    /// <summary>Records a flow refused at CONNECT.</summary>
    public void AuditDenied(SpiffeId caller, int port, AuthorizationDecision decision) =>
        Emit(new AuditRecord(_time.GetUtcNow(), "denied", caller.ToString(), port, decision.Policy?.ToString(), decision.RuleIndex, TriggerConnect, decision.Reason, TimeSpan.Zero, 0, 0));

    /// <summary>
    /// Records a refused flow or, when <paramref name="request"/> carries <see cref="AuthorizationRequest.Http"/>,
    /// a refused HTTP request (with its method and path).
    /// </summary>
    public void AuditDenied(SpiffeId caller, AuthorizationRequest request, AuthorizationDecision decision)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(request);
        Emit(new AuditRecord(_time.GetUtcNow(), "denied", caller.ToString(), request.DestinationPort, decision.Policy?.ToString(), decision.RuleIndex,
            TriggerConnect, decision.Reason, TimeSpan.Zero, 0, 0, request.Http?.Method, request.Http?.Path));
    }

    /// <summary>Re-authorizes every live connection; returns how many were revoked.</summary>
    public int Reevaluate(string trigger)
    {
        int revoked = 0;
        lock (_reevaluating)
        {
            foreach (LiveConnection connection in _live.Keys)
            {
                string? why = Check(connection, out AuthorizationDecision decision, out string actualTrigger);
                if (why is null)
                {
                    connection.Decision = decision;
                }
                else if (Revoke(connection, decision, actualTrigger == TriggerPolicy ? trigger : actualTrigger, why))
                {
                    revoked++;
                }
            }
        }

        ScheduleExpiry();
        return revoked;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _policies.Changed -= OnPolicyChanged;
        _source.Updated -= OnBundleChanged;
        _expiryTimer.Dispose();
    }

    private void OnPolicyChanged(object? sender, EventArgs e) => Reevaluate(TriggerPolicy);

    private void OnBundleChanged(object? sender, X509Context e) => Reevaluate(TriggerBundle);

    /// <summary>Null when still allowed; otherwise why not, and which kind of check failed.</summary>
    private string? Check(LiveConnection connection, out AuthorizationDecision decision, out string trigger)
    {
        DateTimeOffset now = _time.GetUtcNow();
        decision = default;
        if (now >= connection.CallerNotAfter)
        {
            trigger = TriggerExpiry;
            return $"caller SVID expired at {connection.CallerNotAfter:O}";
        }

        if (_source.HasContext)
        {
            string trustDomain = connection.Caller.TrustDomain;
            SvidValidationResult valid = SvidValidator.Validate(
                connection.CallerCertificate, null, _source.Current.BundleFor(trustDomain), trustDomain, now, out _);
            if (valid != SvidValidationResult.Valid)
            {
                trigger = TriggerBundle;
                return $"caller SVID no longer validates against the trust bundle: {valid}";
            }
        }

        trigger = TriggerPolicy;
        decision = Authorize(connection.Request);
        return decision.Allowed ? null : decision.Reason;
    }

    private bool Revoke(LiveConnection connection, AuthorizationDecision decision, string trigger, string why)
    {
        if (!connection.Revoke())
        {
            return false;
        }

        _live.TryRemove(connection, out _);
        DateTimeOffset now = _time.GetUtcNow();
        Emit(new AuditRecord(now, "revoked", connection.Caller.ToString(), connection.Request.DestinationPort,
            decision.Policy?.ToString(), decision.RuleIndex, trigger, why, now - connection.StartedAt,
            connection.BytesToWorkload, connection.BytesFromWorkload, connection.Request.Http?.Method, connection.Request.Http?.Path));
        return true;
    }

    private void Emit(AuditRecord record)
    {
        if (record.Method is not null)
        {
            Log.AuditHttp(_logger, record.Action, record.Caller, record.DestinationPort, record.Method, record.Path, record.Policy, record.Rule, record.Trigger, record.Reason,
                (long)record.Duration.TotalMilliseconds);
        }
        else
        {
            Log.Audit(_logger, record.Action, record.Caller, record.DestinationPort, record.Policy, record.Rule, record.Trigger, record.Reason,
                (long)record.Duration.TotalMilliseconds, record.BytesToWorkload, record.BytesFromWorkload);
        }
        Audited?.Invoke(this, record);
    }

    private void ScheduleExpiry()
    {
        DateTimeOffset earliest = DateTimeOffset.MaxValue;
        foreach (LiveConnection connection in _live.Keys)
        {
            if (connection.CallerNotAfter < earliest)
            {
                earliest = connection.CallerNotAfter;
            }
        }

        TimeSpan due = earliest == DateTimeOffset.MaxValue ? Timeout.InfiniteTimeSpan : earliest - _time.GetUtcNow();
        if (due != Timeout.InfiniteTimeSpan && due < TimeSpan.Zero)
        {
            due = TimeSpan.Zero;
        }

        try
        {
            _expiryTimer.Change(due, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private sealed class Registration(LiveConnectionRegistry registry, LiveConnection connection) : IDisposable
    {
        public void Dispose() => registry._live.TryRemove(connection, out _);
    }
}
