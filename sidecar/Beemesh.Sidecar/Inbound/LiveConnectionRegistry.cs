using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Authorization;
using Beemesh.Sidecar.Telemetry;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Sidecar.Inbound;

/// <summary>
/// Continuous authorization: every live tunnelled inbound connection, re-authorized when the
/// policies change, when the trust bundle changes (<see cref="X509Source.Updated"/>) and when the
/// SVID the caller presented at the tunnel handshake expires (a timer on the earliest
/// <see cref="LiveConnection.IdentityCheckAt"/>). A connection no longer allowed is revoked at once,
/// on the thread that reported the change, with one audit record; so the bound is the time to walk
/// the live set, not a polling period.
/// </summary>
/// <remarks>
/// The handshake SVID's expiry does not by itself end a connection: callers rotate their SVIDs at
/// half-life, and a long flow must not be dropped because the tunnel connection it rides was
/// handshaken with an SVID that has since been replaced. At the identity check a connection is
/// <list type="bullet">
/// <item>kept when the caller is still a workload of the mesh (the injected "is current" check, the
/// directory's <c>ResolveIdentity(caller) != null</c>) and its certificate chain still verifies
/// against the CURRENT trust bundle, apart from the validity period; the next check is then one SVID
/// lifetime later, so a caller that leaves the mesh is cut within one lifetime;</item>
/// <item>cut (trigger <c>svid-expired</c>, audit record) when the identity is no longer current, or
/// when no "is current" check was given (strict mode: the handshake SVID bounds the connection).</item>
/// </list>
/// A trust-bundle change that no longer verifies the chain cuts (<c>bundle-changed</c>) and a policy
/// change that no longer allows the connection cuts (<c>policy-changed</c>), expired or not.
/// A caller the mesh directory learns has left (its process is gone) is cut at once by
/// <see cref="RevokeDeparted"/> (<c>caller-departed</c>), without waiting for its SVID to expire.
/// A caller whose SVID was issued by a node removed from the mesh (the injected "revoked issuer"
/// check, fed by the agent's list of revoked nodes) is refused on <see cref="Add(LiveConnection, long)"/>
/// and cut by <see cref="RevokeFromRevokedNodes"/> (<c>node-revoked</c>) as soon as the list names it,
/// whatever its identity and the policies say.
/// Every decision and revocation is counted in <see cref="Counters"/>.
/// </remarks>
public sealed class LiveConnectionRegistry : IDisposable
{
    /// <summary>Trigger names used in audit records.</summary>
    public const string TriggerConnect = "connect", TriggerPolicy = "policy-changed", TriggerBundle = "bundle-changed", TriggerExpiry = "svid-expired",
        TriggerDeparted = "caller-departed", TriggerNodeRevoked = "node-revoked";

    // Identity checks of kept connections never come closer together than this, even for SVIDs
    // with absurdly short lifetimes, so a misissued certificate cannot make the timer spin.
    private static readonly TimeSpan MinimumRecheck = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<LiveConnection, byte> _live = new();
    private readonly IPolicySource _policies;
    private readonly X509Source _source;
    private readonly PolicyEvaluator _evaluator;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ITimer _expiryTimer;
    private readonly Lock _reevaluating = new();
    private readonly Lock _scheduling = new();
    private DateTimeOffset _scheduledAt = DateTimeOffset.MaxValue;
    private long _changes;

    // Caller certificates whose chain verified, with the change count it verified at.
    private readonly ConditionalWeakTable<X509Certificate2, StrongBox<long>> _verifiedChains = new();
    private readonly Func<SpiffeId, bool>? _isCallerCurrent;
    private readonly Func<X509Certificate2, string?>? _revokedIssuer;

    /// <summary>
    /// Creates a registry and subscribes to policy and bundle changes. <paramref name="isCallerCurrent"/>
    /// says whether a caller identity is still a workload of the mesh (connections whose handshake SVID
    /// expired are kept while it says yes); null cuts every connection at its handshake SVID's expiry.
    /// <paramref name="revokedIssuer"/> names the revoked node that issued a caller's certificate (null
    /// when none did): such callers are refused and cut.
    /// </summary>
    public LiveConnectionRegistry(
        IPolicySource policies,
        X509Source source,
        PolicyEvaluator? evaluator = null,
        ILogger? logger = null,
        TimeProvider? timeProvider = null,
        Func<SpiffeId, bool>? isCallerCurrent = null,
        MeshCounters? counters = null,
        Func<X509Certificate2, string?>? revokedIssuer = null)
    {
        ArgumentNullException.ThrowIfNull(policies);
        ArgumentNullException.ThrowIfNull(source);
        _policies = policies;
        _source = source;
        _evaluator = evaluator ?? PolicyEvaluator.Default;
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? source.TimeProvider;
        _isCallerCurrent = isCallerCurrent;
        _revokedIssuer = revokedIssuer;
        Counters = counters ?? new MeshCounters();
        _expiryTimer = _time.CreateTimer(static state => ((LiveConnectionRegistry)state!).Reevaluate(TriggerExpiry), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _policies.Changed += OnPolicyChanged;
        _source.Updated += OnBundleChanged;
    }

    /// <summary>Raised for every audit record (after it was logged).</summary>
    public event EventHandler<AuditRecord>? Audited;

    /// <summary>The counters every decision, connection, byte and revocation of this registry goes to.</summary>
    public MeshCounters Counters { get; }

    /// <summary>Number of live connections.</summary>
    public int Count => _live.Count;

    /// <summary>A snapshot of the live connections.</summary>
    public IReadOnlyCollection<LiveConnection> Connections => [.. _live.Keys];

    /// <summary>Decides <paramref name="request"/> (a new flow or request) against the current policies; counted with trigger <c>connect</c>.</summary>
    public AuthorizationDecision Authorize(AuthorizationRequest request) => Decide(request, TriggerConnect, count: true);

    /// <summary>
    /// Counts policy and bundle changes. Read it before <see cref="Authorize"/> and pass it to
    /// <see cref="Add(LiveConnection, long)"/>: when nothing changed in between, the decision just made
    /// stands and is not computed again (an HTTP port registers every request).
    /// </summary>
    public long ChangeCount => Interlocked.Read(ref _changes);

    /// <summary>Tracks <paramref name="connection"/> until the returned handle is disposed.</summary>
    public IDisposable Add(LiveConnection connection) => Add(connection, -1);

    /// <summary>
    /// Tracks <paramref name="connection"/>, authorized when <see cref="ChangeCount"/> was
    /// <paramref name="authorizedAtChange"/> (-1: unknown, check again), until the handle is disposed.
    /// </summary>
    public IDisposable Add(LiveConnection connection, long authorizedAtChange)
    {
        ArgumentNullException.ThrowIfNull(connection);
        connection.Counters = Counters;
        Counters.CountConnectionOpened();
        // A flow on a tunnel whose handshake SVID expired (and was kept) starts with its identity
        // check already due: settle it now rather than firing the timer for every such flow.
        string? why = null;
        AuthorizationDecision decision = connection.Decision;
        string trigger = TriggerExpiry;
        DateTimeOffset now = _time.GetUtcNow();
        if (now >= connection.IdentityCheckAt)
        {
            if (_isCallerCurrent?.Invoke(connection.Caller) == true)
            {
                connection.IdentityCheckAt = NextIdentityCheck(connection, now);
            }
            else
            {
                why = $"caller SVID expired at {connection.CallerNotAfter:O}";
            }
        }

        _live.TryAdd(connection, 0);
        // Checked once the connection is in the live set: a revocation installed after this check
        // finds it there (RevokeFromRevokedNodes), one installed before is seen here.
        if (RevokedIssuerOf(connection) is { } revokedNode)
        {
            why = revokedNode;
            trigger = TriggerNodeRevoked;
        }

        if (why is null && (authorizedAtChange < 0 || authorizedAtChange != ChangeCount))
        {
            // A change that raced with the CONNECT (after Authorize, before Add) must not be missed;
            // the decision itself was counted by Authorize already.
            why = Check(connection, TriggerConnect, countDecision: false, out decision, out trigger);
        }
        else if (why is null && CheckChain(connection, now) is { } chain)
        {
            // The decision stands, but the bundle may have changed since this tunnel's handshake.
            why = chain;
            trigger = TriggerBundle;
        }

        if (why is not null)
        {
            Revoke(connection, decision, trigger, why);
        }
        else
        {
            ScheduleExpiryIfEarlier(connection.IdentityCheckAt);
        }

        return new Registration(this, connection);
    }

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

    /// <summary>
    /// Cuts (trigger <c>caller-departed</c>) every live connection whose caller
    /// <paramref name="isMember"/> says is no longer a workload of the mesh, e.g. after the directory
    /// learned that the caller's process is gone; returns how many were cut.
    /// </summary>
    public int RevokeDeparted(Func<SpiffeId, bool> isMember)
    {
        ArgumentNullException.ThrowIfNull(isMember);
        int revoked = 0;
        lock (_reevaluating)
        {
            foreach (LiveConnection connection in _live.Keys)
            {
                if (!isMember(connection.Caller)
                    && Revoke(connection, connection.Decision, TriggerDeparted, $"{connection.Caller} is no longer a workload of the mesh"))
                {
                    revoked++;
                }
            }
        }

        if (revoked > 0)
        {
            ScheduleExpiry();
        }

        return revoked;
    }

    /// <summary>
    /// Cuts (trigger <c>node-revoked</c>) every live connection whose caller presented an SVID issued by
    /// a node the "revoked issuer" check names, e.g. after the agent's list of revoked nodes grew;
    /// returns how many were cut.
    /// </summary>
    public int RevokeFromRevokedNodes()
    {
        if (_revokedIssuer is null)
        {
            return 0;
        }

        int revoked = 0;
        lock (_reevaluating)
        {
            foreach (LiveConnection connection in _live.Keys)
            {
                if (RevokedIssuerOf(connection) is { } why && Revoke(connection, connection.Decision, TriggerNodeRevoked, why))
                {
                    revoked++;
                }
            }
        }

        if (revoked > 0)
        {
            ScheduleExpiry();
        }

        return revoked;
    }

    /// <summary>Null unless the caller's SVID was issued by a revoked node; otherwise why the connection is cut.</summary>
    private string? RevokedIssuerOf(LiveConnection connection) =>
        _revokedIssuer?.Invoke(connection.CallerCertificate) is { } node
            ? $"caller SVID was issued by node {node}, which was removed from the mesh"
            : null;

    /// <summary>Re-authorizes every live connection; returns how many were revoked.</summary>
    public int Reevaluate(string trigger)
    {
        int revoked = 0;
        lock (_reevaluating)
        {
            foreach (LiveConnection connection in _live.Keys)
            {
                string? why = Check(connection, trigger, countDecision: true, out AuthorizationDecision decision, out string actualTrigger);
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

    private void OnPolicyChanged(object? sender, EventArgs e)
    {
        Interlocked.Increment(ref _changes);
        Reevaluate(TriggerPolicy);
    }

    private void OnBundleChanged(object? sender, X509Context e)
    {
        Interlocked.Increment(ref _changes);
        Reevaluate(TriggerBundle);
    }

    private AuthorizationDecision Decide(AuthorizationRequest request, string trigger, bool count)
    {
        AuthorizationDecision decision = _evaluator.Evaluate(_policies.Current, request);
        if (count)
        {
            Counters.CountDecision(decision.Allowed, trigger);
        }

        return decision;
    }

    /// <summary>Null when still allowed; otherwise why not, and which kind of check failed.</summary>
    private string? Check(LiveConnection connection, string reason, bool countDecision, out AuthorizationDecision decision, out string trigger)
    {
        DateTimeOffset now = _time.GetUtcNow();
        decision = default;
        if (RevokedIssuerOf(connection) is { } revokedNode)
        {
            trigger = TriggerNodeRevoked;
            return revokedNode;
        }

        if (now >= connection.IdentityCheckAt)
        {
            if (_isCallerCurrent is null || !_isCallerCurrent(connection.Caller))
            {
                trigger = TriggerExpiry;
                return _isCallerCurrent is null
                    ? $"caller SVID expired at {connection.CallerNotAfter:O}"
                    : $"caller SVID expired at {connection.CallerNotAfter:O} and {connection.Caller} is no longer a workload of the mesh";
            }

            Renew(connection, now);
        }

        string? chain = CheckChain(connection, now);
        if (chain is not null)
        {
            trigger = TriggerBundle;
            return chain;
        }

        trigger = TriggerPolicy;
        decision = Decide(connection.Request, reason, countDecision);
        return decision.Allowed ? null : decision.Reason;
    }

    /// <summary>
    /// Null when the caller's handshake chain verifies against the current bundle. A certificate that
    /// verified since the last bundle or policy change is not built again: every flow and HTTP request
    /// on one tunnel connection presents the same certificate.
    /// </summary>
    private string? CheckChain(LiveConnection connection, DateTimeOffset now)
    {
        long changes = ChangeCount;
        if (_verifiedChains.TryGetValue(connection.CallerCertificate, out StrongBox<long>? verifiedAt) && Interlocked.Read(ref verifiedAt.Value) == changes)
        {
            return null;
        }

        if (_source.HasContext)
        {
            // The chain is checked against the bundle as it is NOW, at a time inside the handshake
            // SVID's validity: an expired but rotated caller is judged by its identity (above), a
            // caller whose root left the bundle is still cut.
            // (One second inside: certificate times have whole-second precision and path building
            // treats the NotAfter instant itself as outside the validity.)
            DateTimeOffset lastValid = connection.CallerNotAfter - TimeSpan.FromSeconds(1);
            DateTimeOffset at = now < lastValid ? now : lastValid;
            if (at < connection.CallerNotBefore)
            {
                at = connection.CallerNotBefore;
            }

            string trustDomain = connection.Caller.TrustDomain;
            SvidValidationResult valid = SvidValidator.Validate(
                connection.CallerCertificate, SpiffeTls.GetPeerIntermediates(connection.CallerCertificate), _source.Current.BundleFor(trustDomain), trustDomain, at, out _);
            if (valid != SvidValidationResult.Valid)
            {
                return $"caller SVID no longer validates against the trust bundle: {valid}";
            }
        }

        _verifiedChains.AddOrUpdate(connection.CallerCertificate, new StrongBox<long>(changes));
        return null;
    }

    /// <summary>The caller is still current: push the next identity check one SVID lifetime past now.</summary>
    private void Renew(LiveConnection connection, DateTimeOffset now)
    {
        DateTimeOffset next = NextIdentityCheck(connection, now);
        connection.IdentityCheckAt = next;
        connection.IdentityRenewals++;
        Counters.CountKeptAtSvidExpiry();
        Log.KeptPastSvidExpiry(_logger, connection.Caller.ToString(), connection.Request.DestinationPort, connection.CallerNotAfter, next);
    }

    /// <summary>The first identity check after <paramref name="now"/>: whole SVID lifetimes past the due one.</summary>
    private static DateTimeOffset NextIdentityCheck(LiveConnection connection, DateTimeOffset now)
    {
        TimeSpan lifetime = connection.CallerNotAfter - connection.CallerNotBefore;
        if (lifetime < MinimumRecheck)
        {
            lifetime = MinimumRecheck;
        }

        DateTimeOffset due = connection.IdentityCheckAt;
        long periods = (now - due).Ticks / lifetime.Ticks + 1;
        return due + TimeSpan.FromTicks(lifetime.Ticks * periods);
    }

    private bool Revoke(LiveConnection connection, AuthorizationDecision decision, string trigger, string why)
    {
        if (!connection.Revoke())
        {
            return false;
        }

        _live.TryRemove(connection, out _);
        Counters.CountRevocation(trigger);
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

    /// <summary>Sets the timer to the earliest identity check of the live set (after a walk that may have moved them).</summary>
    private void ScheduleExpiry()
    {
        lock (_scheduling)
        {
            DateTimeOffset earliest = DateTimeOffset.MaxValue;
            foreach (LiveConnection connection in _live.Keys)
            {
                DateTimeOffset checkAt = connection.IdentityCheckAt;
                if (checkAt < earliest)
                {
                    earliest = checkAt;
                }
            }

            SetTimer(earliest);
        }
    }

    /// <summary>A new connection moves the timer only when its identity check comes before the one set.</summary>
    private void ScheduleExpiryIfEarlier(DateTimeOffset checkAt)
    {
        lock (_scheduling)
        {
            if (checkAt < _scheduledAt)
            {
                SetTimer(checkAt);
            }
        }
    }

    private void SetTimer(DateTimeOffset at)
    {
        _scheduledAt = at;
        TimeSpan due = at == DateTimeOffset.MaxValue ? Timeout.InfiniteTimeSpan : at - _time.GetUtcNow();
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
