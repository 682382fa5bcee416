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
}
