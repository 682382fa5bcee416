using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Authorization;
using Beemesh.Sidecar.Inbound;
using Beemesh.Sidecar.Tests.Tunnel;
using Beemesh.Sidecar.Tunnel;
using Beemesh.Spiffe;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Sidecar.Tests.Inbound;

public sealed class LiveConnectionRegistryTests
{
    private const string WebId = "spiffe://example.org/ns/default/sa/web";

    [Fact]
    public async Task CallerSvidExpiry_RevokesWhenNotAfterPasses()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var registry = new LiveConnectionRegistry(new InMemoryPolicySource(), mesh.Api.Source, timeProvider: time);
        var audits = new List<AuditRecord>();
        registry.Audited += (_, record) => audits.Add(record);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        X509Certificate2 svid = mesh.Authority.IssueX509Svid(WebId, key, TimeSpan.FromMinutes(1));
        int aborts = 0;
        LiveConnection connection = NewConnection(svid, time, () => aborts++);

        using IDisposable registration = registry.Add(connection);
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(0, aborts);
        time.Advance(TimeSpan.FromSeconds(45));

        Assert.Equal(1, aborts);
        Assert.True(connection.IsRevoked);
        Assert.Equal(0, registry.Count);
        AuditRecord audit = Assert.Single(audits);
        Assert.Equal(LiveConnectionRegistry.TriggerExpiry, audit.Trigger);
        Assert.Equal(WebId, audit.Caller);
    }

    [Fact]
    public async Task ExpiredHandshakeSvid_IsKeptWhileCallerIsAMeshWorkload_ThenCutOnceItLeft()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        bool webIsMember = true;
        using var registry = new LiveConnectionRegistry(new InMemoryPolicySource(), mesh.Api.Source, timeProvider: time,
            isCallerCurrent: id => webIsMember && id.ToString() == WebId);
        var audits = new List<AuditRecord>();
        registry.Audited += (_, record) => audits.Add(record);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        X509Certificate2 svid = mesh.Authority.IssueX509Svid(WebId, key, TimeSpan.FromMinutes(1));
        int aborts = 0;
        LiveConnection connection = NewConnection(svid, time, () => aborts++);
        TimeSpan lifetime = connection.CallerNotAfter - connection.CallerNotBefore;

        using IDisposable registration = registry.Add(connection);
        time.Advance(TimeSpan.FromSeconds(75)); // past the handshake SVID's NotAfter

        Assert.Equal(0, aborts);
        Assert.Empty(audits);
        Assert.Equal(1, registry.Count);
        Assert.Equal(1, connection.IdentityRenewals);
        Assert.Equal(connection.CallerNotAfter + lifetime, connection.IdentityCheckAt);
        Assert.Equal(1, registry.Counters.KeptAtSvidExpiry);

        // Still a member at the next check: kept again.
        time.Advance(lifetime);
        Assert.Equal(0, aborts);
        Assert.Equal(2, connection.IdentityRenewals);

        // The caller left the mesh: cut at the next identity check, with an audit record.
        webIsMember = false;
        time.Advance(lifetime);

        Assert.Equal(1, aborts);
        Assert.Equal(0, registry.Count);
        AuditRecord audit = Assert.Single(audits);
        Assert.Equal("revoked", audit.Action);
        Assert.Equal(LiveConnectionRegistry.TriggerExpiry, audit.Trigger);
        Assert.Contains("no longer a workload of the mesh", audit.Reason, StringComparison.Ordinal);
        Assert.Equal(1, registry.Counters.Revocations[LiveConnectionRegistry.TriggerExpiry]);
    }

    [Fact]
    public async Task ExpiredHandshakeSvid_OfACallerThatLeft_IsCutAtNotAfter()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var registry = new LiveConnectionRegistry(new InMemoryPolicySource(), mesh.Api.Source, timeProvider: time, isCallerCurrent: _ => false);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        LiveConnection connection = NewConnection(mesh.Authority.IssueX509Svid(WebId, key, TimeSpan.FromMinutes(1)), time, () => { });

        using IDisposable registration = registry.Add(connection);
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.False(connection.IsRevoked);
        time.Advance(TimeSpan.FromSeconds(45));

        Assert.True(connection.IsRevoked);
        Assert.Equal(0, connection.IdentityRenewals);
        Assert.Equal(1, registry.Counters.Revocations[LiveConnectionRegistry.TriggerExpiry]);
    }

    [Fact]
    public async Task KeptExpiredConnection_IsStillJudgedByPolicy_NotRevokedAsExpiredOnReevaluation()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var policies = new InMemoryPolicySource();
        using var registry = new LiveConnectionRegistry(policies, mesh.Api.Source, timeProvider: time, isCallerCurrent: _ => true);
        var audits = new List<AuditRecord>();
        registry.Audited += (_, record) => audits.Add(record);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        LiveConnection connection = NewConnection(mesh.Authority.IssueX509Svid(WebId, key, TimeSpan.FromMinutes(1)), time, () => { });
        using IDisposable registration = registry.Add(connection);
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.False(connection.IsRevoked);

        // The chain is checked against the current bundle apart from the validity period, so an
        // unrelated policy change keeps the (expired, rotated) connection...
        policies.Set([MeshFixture.Policy("allow-web", PolicyAction.Allow, "example.org/ns/default/sa/web")]);
        Assert.False(connection.IsRevoked);
        Assert.Equal(1, registry.Counters.Allowed[LiveConnectionRegistry.TriggerPolicy]);

        // ...and a DENY still cuts it, as a policy change.
        policies.Set([MeshFixture.Policy("deny-web", PolicyAction.Deny, "example.org/ns/default/sa/web")]);
        Assert.True(connection.IsRevoked);
        AuditRecord audit = Assert.Single(audits);
        Assert.Equal(LiveConnectionRegistry.TriggerPolicy, audit.Trigger);
        Assert.Equal(1, registry.Counters.Denied[LiveConnectionRegistry.TriggerPolicy]);
        Assert.Equal(1, registry.Counters.Revocations[LiveConnectionRegistry.TriggerPolicy]);
    }

    [Fact]
    public async Task Decisions_AreCountedOncePerAuthorizeAndPerReevaluation()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        var policies = new InMemoryPolicySource();
        using var registry = new LiveConnectionRegistry(policies, mesh.Api.Source);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        LiveConnection web = NewConnection(mesh.Authority.IssueX509Svid(WebId, key), TimeProvider.System, () => { });

        Assert.True(registry.Authorize(web.Request).Allowed);
        using IDisposable registration = registry.Add(web);
        web.Count(toWorkload: true, 100);
        web.Count(toWorkload: false, 7);
        policies.Set([MeshFixture.Policy("allow-evil", PolicyAction.Allow, "example.org/ns/evil/sa/evil")]);
        Assert.False(registry.Authorize(web.Request).Allowed);

        Assert.Equal(1, registry.Counters.Allowed[LiveConnectionRegistry.TriggerConnect]);
        Assert.Equal(1, registry.Counters.Denied[LiveConnectionRegistry.TriggerConnect]);
        Assert.Equal(1, registry.Counters.Denied[LiveConnectionRegistry.TriggerPolicy]);
        Assert.Equal(1, registry.Counters.Revocations[LiveConnectionRegistry.TriggerPolicy]);
        Assert.Equal(1, registry.Counters.ConnectionsOpened);
        Assert.Equal(100, registry.Counters.BytesToWorkload);
        Assert.Equal(7, registry.Counters.BytesFromWorkload);
    }

    [Fact]
    public async Task FlowOnATunnelWhoseHandshakeSvidExpired_IsSettledOnAdd_WithoutReevaluatingEveryone()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var registry = new LiveConnectionRegistry(new InMemoryPolicySource(), mesh.Api.Source, timeProvider: time, isCallerCurrent: _ => true);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        X509Certificate2 svid = mesh.Authority.IssueX509Svid(WebId, key, TimeSpan.FromMinutes(1));
        using IDisposable first = registry.Add(NewConnection(svid, time, () => { }));
        time.Advance(TimeSpan.FromSeconds(75)); // the tunnel's handshake SVID expired; the caller is current
        Assert.Equal(1, registry.Counters.KeptAtSvidExpiry);
        long expiryDecisions = registry.Counters.Allowed[LiveConnectionRegistry.TriggerExpiry];

        // New flows (or HTTP requests) on that tunnel present the expired handshake SVID.
        var later = new List<IDisposable>();
        for (int i = 0; i < 5; i++)
        {
            LiveConnection flow = NewConnection(svid, time, () => { });
            later.Add(registry.Add(flow, registry.ChangeCount));
            Assert.False(flow.IsRevoked);
            Assert.True(flow.IdentityCheckAt > time.GetUtcNow());
        }

        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(6, registry.Count);
        Assert.Equal(1, registry.Counters.KeptAtSvidExpiry); // settling a new flow is not a connection kept past expiry
        Assert.Equal(expiryDecisions, registry.Counters.Allowed[LiveConnectionRegistry.TriggerExpiry]); // no re-evaluation fired
        later.ForEach(r => r.Dispose());
    }

    [Fact]
    public async Task Add_DecidesAgainOnlyWhenPoliciesChangedSinceAuthorize()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        var policies = new CountingPolicySource();
        using var registry = new LiveConnectionRegistry(policies, mesh.Api.Source);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        X509Certificate2 svid = mesh.Authority.IssueX509Svid(WebId, key);

        LiveConnection unchanged = NewConnection(svid, TimeProvider.System, () => { });
        long changes = registry.ChangeCount;
        Assert.True(registry.Authorize(unchanged.Request).Allowed);
        int reads = policies.Reads;
        using IDisposable a = registry.Add(unchanged, changes);
        Assert.Equal(reads, policies.Reads); // the decision just made stands
        Assert.False(unchanged.IsRevoked);

        // A DENY lands between Authorize and Add: Add must see it.
        int aborts = 0;
        LiveConnection raced = NewConnection(svid, TimeProvider.System, () => aborts++);
        changes = registry.ChangeCount;
        Assert.True(registry.Authorize(raced.Request).Allowed);
        policies.Set([MeshFixture.Policy("deny-web", PolicyAction.Deny, "example.org/ns/default/sa/web")]);
        Assert.True(unchanged.IsRevoked); // re-evaluated by the change itself
        using IDisposable b = registry.Add(raced, changes);
        Assert.Equal(1, aborts);
        Assert.True(raced.IsRevoked);
    }

    [Fact]
    public async Task CallerOutsideTrustBundle_IsRevokedOnAdd()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        using var registry = new LiveConnectionRegistry(new InMemoryPolicySource(), mesh.Api.Source);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        X509Certificate2 svid = mesh.ForeignAuthority.IssueX509Svid("spiffe://other.org/ns/default/sa/web", key);
        int aborts = 0;

        using IDisposable registration = registry.Add(NewConnection(svid, TimeProvider.System, () => aborts++));

        Assert.Equal(1, aborts);
        Assert.Equal(0, registry.Count);
    }

    [Fact]
    public async Task RevokeDeparted_CutsOnlyTheFlowsOfCallersNoLongerInTheMesh()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var registry = new LiveConnectionRegistry(new InMemoryPolicySource(), mesh.Api.Source, timeProvider: time);
        var audits = new List<AuditRecord>();
        registry.Audited += (_, record) => audits.Add(record);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        const string OtherId = "spiffe://example.org/ns/default/sa/other";
        int webAborts = 0, otherAborts = 0;
        LiveConnection web = NewConnection(mesh.Authority.IssueX509Svid(WebId, key, TimeSpan.FromMinutes(10)), time, () => webAborts++);
        LiveConnection other = NewConnection(mesh.Authority.IssueX509Svid(OtherId, key, TimeSpan.FromMinutes(10)), time, () => otherAborts++);
        using IDisposable webRegistration = registry.Add(web);
        using IDisposable otherRegistration = registry.Add(other);

        Assert.Equal(0, registry.RevokeDeparted(_ => true));
        Assert.Equal(1, registry.RevokeDeparted(id => id.ToString() != WebId));

        Assert.True(web.IsRevoked);
        Assert.Equal(1, webAborts);
        Assert.False(other.IsRevoked);
        Assert.Equal(0, otherAborts);
        Assert.Equal(1, registry.Count);
        AuditRecord audit = Assert.Single(audits);
        Assert.Equal(LiveConnectionRegistry.TriggerDeparted, audit.Trigger);
        Assert.Equal(1, registry.Counters.Revocations[LiveConnectionRegistry.TriggerDeparted]);
    }

    [Fact]
    public async Task RevokeFromRevokedNodes_CutsOnlyCallersWhoseIssuerWasRevoked_AndAddRefusesThemFromThen()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        const string OtherId = "spiffe://example.org/ns/default/sa/other";
        X509Certificate2 webSvid = mesh.Authority.IssueX509Svid(WebId, key, TimeSpan.FromMinutes(10));
        X509Certificate2 otherSvid = mesh.Authority.IssueX509Svid(OtherId, key, TimeSpan.FromMinutes(10));
        // Stands in for the directory's check: web's SVID came from node n2 once n2 is revoked.
        var revoked = new HashSet<string>();
        using var registry = new LiveConnectionRegistry(new InMemoryPolicySource(), mesh.Api.Source, timeProvider: time, isCallerCurrent: _ => true,
            revokedIssuer: certificate => certificate == webSvid && revoked.Contains("n2") ? "n2" : null);
        var audits = new List<AuditRecord>();
        registry.Audited += (_, record) => audits.Add(record);
        int webAborts = 0, otherAborts = 0;
        LiveConnection web = NewConnection(webSvid, time, () => webAborts++);
        LiveConnection other = NewConnection(otherSvid, time, () => otherAborts++);
        using IDisposable webRegistration = registry.Add(web);
        using IDisposable otherRegistration = registry.Add(other);
        Assert.Equal(0, registry.RevokeFromRevokedNodes());

        revoked.Add("n2");
        Assert.Equal(1, registry.RevokeFromRevokedNodes());
        Assert.Equal(0, registry.RevokeFromRevokedNodes());

        Assert.Equal(1, webAborts);
        Assert.Equal(0, otherAborts);
        AuditRecord audit = Assert.Single(audits);
        Assert.Equal(LiveConnectionRegistry.TriggerNodeRevoked, audit.Trigger);
        Assert.Equal(WebId, audit.Caller);
        Assert.Contains("node n2", audit.Reason);
        Assert.Equal(1, registry.Counters.Revocations[LiveConnectionRegistry.TriggerNodeRevoked]);

        // A new flow from the same caller is cut as it is added, even with a decision made before.
        int lateAborts = 0;
        LiveConnection late = NewConnection(webSvid, time, () => lateAborts++);
        using IDisposable lateRegistration = registry.Add(late, registry.ChangeCount);
        Assert.Equal(1, lateAborts);
        Assert.True(late.IsRevoked);
        Assert.Equal(1, registry.Count);
        Assert.Same(other, Assert.Single(registry.Connections));
    }

    [Fact]
    public async Task RevokedIssuer_IsCheckedOnEveryReevaluation()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        var policies = new InMemoryPolicySource();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        bool revoked = false;
        using var registry = new LiveConnectionRegistry(policies, mesh.Api.Source, revokedIssuer: _ => revoked ? "n7" : null);
        var audits = new List<AuditRecord>();
        registry.Audited += (_, record) => audits.Add(record);
        int aborts = 0;
        using IDisposable web = registry.Add(NewConnection(mesh.Authority.IssueX509Svid(WebId, key), TimeProvider.System, () => aborts++));

        revoked = true;
        // Any change walks the live set; an ALLOW for the caller does not save it.
        policies.Set([MeshFixture.Policy("allow-web", PolicyAction.Allow, "example.org/ns/default/sa/web")]);

        Assert.Equal(1, aborts);
        Assert.Equal(LiveConnectionRegistry.TriggerNodeRevoked, Assert.Single(audits).Trigger);
    }

    [Fact]
    public async Task PolicyChange_KeepsAllowedAndRevokesDeniedOnce()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync();
        var policies = new InMemoryPolicySource();
        using var registry = new LiveConnectionRegistry(policies, mesh.Api.Source);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        int webAborts = 0, evilAborts = 0;
        using IDisposable web = registry.Add(NewConnection(mesh.Authority.IssueX509Svid(WebId, key), TimeProvider.System, () => webAborts++));
        using IDisposable evil = registry.Add(NewConnection(mesh.Authority.IssueX509Svid("spiffe://example.org/ns/evil/sa/evil", key), TimeProvider.System, () => evilAborts++));

        policies.Set([MeshFixture.Policy("allow-web", PolicyAction.Allow, "example.org/ns/default/sa/web")]);
        policies.Set([MeshFixture.Policy("allow-web-again", PolicyAction.Allow, "example.org/ns/default/sa/web")]);

        Assert.Equal(0, webAborts);
        Assert.Equal(1, evilAborts);
        LiveConnection remaining = Assert.Single(registry.Connections);
        Assert.Equal("allow-web-again", remaining.Decision.PolicyName);
    }

    [Theory]
    [InlineData("spiffe://example.org/ns/prod/sa/web", "example.org/ns/prod/sa/web", "prod")]
    [InlineData("spiffe://example.org/workload/x", "example.org/workload/x", null)]
    public void Principal_AndNamespace_FollowIstioConventions(string id, string principal, string? ns)
    {
        SpiffeId spiffeId = SpiffeId.Parse(id);

        Assert.Equal(principal, TunnelServer.Principal(spiffeId));
        Assert.Equal(ns, TunnelServer.NamespaceOf(spiffeId));
    }

    private static LiveConnection NewConnection(X509Certificate2 svid, TimeProvider time, Action abort)
    {
        Assert.Equal(Spiffe.X509.SvidValidationResult.Valid, Spiffe.X509.SvidValidator.TryGetSpiffeId(svid, out SpiffeId? id));
        var request = new AuthorizationRequest
        {
            WorkloadNamespace = "default",
            SourcePrincipal = TunnelServer.Principal(id!),
            SourceNamespace = TunnelServer.NamespaceOf(id!),
            DestinationPort = 8080,
        };
        return new LiveConnection(id!, svid, request, default, time.GetUtcNow(), abort);
    }

    private sealed class CountingPolicySource : IPolicySource
    {
        private IReadOnlyList<AuthorizationPolicy> _current = [];
        private int _reads;

        public event EventHandler? Changed;

        public int Reads => Volatile.Read(ref _reads);

        public IReadOnlyList<AuthorizationPolicy> Current
        {
            get
            {
                Interlocked.Increment(ref _reads);
                return _current;
            }
        }

        public void Set(IReadOnlyList<AuthorizationPolicy> policies)
        {
            _current = policies;
            Changed?.Invoke(this, EventArgs.Empty);
        }
    }
}
