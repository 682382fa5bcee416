using System.Net;
using Beemesh.Authorization;
using Beemesh.Identity.Authority;

namespace Beemesh.Sidecar.Tests.Tunnel;

/// <summary>
/// Sidecars "web", "api" and "evil" with SVIDs from one CA (example.org), plus "foreign" from a
/// CA of another trust domain, all sharing one mesh directory.
/// </summary>
internal sealed class MeshFixture : IAsyncDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly List<TestSidecar> _sidecars = [];
    private CertificateAuthority _authority = null!;

    public CertificateAuthority Authority => _authority;

    public CertificateAuthority ForeignAuthority => _foreignAuthority;
    private CertificateAuthority _foreignAuthority = null!;

    public StaticMeshDirectory Directory { get; } = new();

    public TestSidecar Web { get; private set; } = null!;

    public TestSidecar Api { get; private set; } = null!;

    public TestSidecar Evil { get; private set; } = null!;

    public TestSidecar Foreign { get; private set; } = null!;

    /// <summary>
    /// Starts the mesh; <paramref name="apiHttpPorts"/> are the ports api declares HTTP, and api's
    /// tunnel server pings after <paramref name="apiKeepAlive"/> of silence (and waits as long for an
    /// answer) on <paramref name="keepAliveTime"/>.
    /// </summary>
    public static async Task<MeshFixture> StartAsync(IReadOnlySet<int>? apiHttpPorts = null, TimeSpan? apiKeepAlive = null, TimeProvider? keepAliveTime = null)
    {
        var fixture = new MeshFixture();
        fixture._authority = CertificateAuthority.LoadOrCreate(fixture._dir.File("ca"));
        fixture._foreignAuthority = CertificateAuthority.LoadOrCreate(fixture._dir.File("ca2"), "other.org");
        fixture.Web = await fixture.AddAsync(fixture._authority, "/ns/default/sa/web", "10.200.0.4");
        fixture.Api = await fixture.AddAsync(fixture._authority, "/ns/default/sa/api", "10.200.0.5", apiHttpPorts, apiKeepAlive, keepAliveTime);
        fixture.Evil = await fixture.AddAsync(fixture._authority, "/ns/evil/sa/evil", "10.200.0.6");
        fixture.Foreign = await fixture.AddAsync(fixture._foreignAuthority, "/ns/default/sa/web", "10.200.0.7");
        return fixture;
    }

    /// <summary>A policy on api's namespace: <paramref name="action"/> for the given principals.</summary>
    public static AuthorizationPolicy Policy(string name, PolicyAction action, params string[] principals)
    {
        var matches = new List<StringMatch>();
        foreach (string principal in principals)
        {
            Assert.True(StringMatch.TryParse(principal, out StringMatch match, out string? error), error);
            matches.Add(match);
        }

        return new AuthorizationPolicy
        {
            Name = name,
            Namespace = "default",
            Action = action,
            Rules = [new PolicyRule { From = [new PolicySource { Principals = matches }] }],
        };
    }

    public async ValueTask DisposeAsync()
    {
        foreach (TestSidecar sidecar in _sidecars)
        {
            await sidecar.DisposeAsync();
        }

        _authority.Dispose();
        _foreignAuthority.Dispose();
        _dir.Dispose();
    }

    private async Task<TestSidecar> AddAsync(CertificateAuthority authority, string path, string meshAddress, IReadOnlySet<int>? httpPorts = null,
        TimeSpan? keepAlive = null, TimeProvider? keepAliveTime = null)
    {
        TestSidecar sidecar = await TestSidecar.StartAsync(authority, _dir.File($"w{_sidecars.Count}.sock"), path, IPAddress.Parse(meshAddress), Directory, httpPorts: httpPorts,
            serverKeepAlive: keepAlive, keepAliveTime: keepAliveTime);
        _sidecars.Add(sidecar);
        return sidecar;
    }
}
