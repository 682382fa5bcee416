using System.Net;
using System.Text;
using Beemesh.Authorization;
using Beemesh.Sidecar.Http;
using Beemesh.Sidecar.Inbound;
using Beemesh.Sidecar.Tests.Tunnel;
using Beemesh.Sidecar.Tunnel;

namespace Beemesh.Sidecar.Tests.Http;

public sealed class HttpPortTests
{
    private const int HttpPort = 8080;
    private const int TcpPort = 9000;
    private static readonly TimeSpan Functional = TimeSpan.FromSeconds(10);
    private static readonly HashSet<int> HttpPorts = [HttpPort];

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task AllowedGet_ReachesWorkloadOverHttp11_WithCallersXfccHostAndAddress(string version)
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync(HttpPorts);
        using var client = new TunnelHttpClient(mesh.Web, mesh.Api, HttpPort, Version.Parse(version));

        (HttpStatusCode status, string body) = await client.GetAsync("/hello?x=1");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("GET /hello?x=1\n", body);
        Assert.Contains("version=HTTP/1.1\n", body);
        Assert.Contains("host=api.default:8080\n", body);
        Assert.Contains("xfcc=By=spiffe://example.org/ns/default/sa/api;URI=spiffe://example.org/ns/default/sa/web\n", body);
        Assert.Equal((mesh.Web.MeshAddress, HttpPort), Assert.Single(mesh.Api.HttpGuest!.Calls));
        Assert.Empty(mesh.Api.Guest.Calls); // nothing spliced raw
    }

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task DenyOnAdminPaths_Refuses403ForAdmin_AndTheSameConnectionStillServesRoot(string version)
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync(HttpPorts);
        mesh.Api.Policies.Set([PathPolicy("no-admin", PolicyAction.Deny, "/admin*")]);
        var audits = new List<AuditRecord>();
        mesh.Api.Server.Connections.Audited += (_, record) => audits.Add(record);
        using var client = new TunnelHttpClient(mesh.Web, mesh.Api, HttpPort, Version.Parse(version));

        (HttpStatusCode adminStatus, string adminBody) = await client.GetAsync("/admin/users");
        (HttpStatusCode rootStatus, _) = await client.GetAsync("/");

        Assert.Equal(HttpStatusCode.Forbidden, adminStatus);
        Assert.Equal("RBAC: access denied", adminBody);
        Assert.Equal(HttpStatusCode.OK, rootStatus);
        Assert.Equal(1, client.FlowsOpened);
        AuditRecord audit = Assert.Single(audits);
        Assert.Equal("denied", audit.Action);
        Assert.Equal("GET", audit.Method);
        Assert.Equal("/admin/users", audit.Path);
        Assert.Equal("default/no-admin", audit.Policy);
        Assert.Equal(HttpPort, audit.DestinationPort);
        Assert.Equal("spiffe://example.org/ns/default/sa/web", audit.Caller);
    }

    [Fact]
    public async Task AllowGetOnly_RefusesPost()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync(HttpPorts);
        mesh.Api.Policies.Set([new AuthorizationPolicy
        {
            Name = "get-only",
            Namespace = "default",
            Action = PolicyAction.Allow,
            Rules = [new PolicyRule { To = [new PolicyOperation { Methods = Matches("GET") }] }],
        }]);
        using var client = new TunnelHttpClient(mesh.Web, mesh.Api, HttpPort, HttpVersion.Version11);

        (HttpStatusCode get, _) = await client.GetAsync("/");
        (HttpStatusCode post, string postBody) = await client.SendAsync(HttpMethod.Post, "/", "payload");

        Assert.Equal(HttpStatusCode.OK, get);
        Assert.Equal(HttpStatusCode.Forbidden, post);
        Assert.Equal("RBAC: access denied", postBody);
    }

    [Fact]
    public async Task QueryString_IsNotPartOfThePathMatched()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync(HttpPorts);
        mesh.Api.Policies.Set([PathPolicy("no-admin", PolicyAction.Deny, "/admin"), PathPolicy("public", PolicyAction.Allow, "/public", "/admin")]);
        using var client = new TunnelHttpClient(mesh.Web, mesh.Api, HttpPort, HttpVersion.Version20);

        (HttpStatusCode admin, _) = await client.GetAsync("/admin?debug=1");
        (HttpStatusCode open, _) = await client.GetAsync("/public?page=2");
        (HttpStatusCode other, _) = await client.GetAsync("/private?public");

        Assert.Equal(HttpStatusCode.Forbidden, admin);
        Assert.Equal(HttpStatusCode.OK, open);
        Assert.Equal(HttpStatusCode.Forbidden, other);
    }

    [Theory]
    [InlineData("/admin")]
    [InlineData("/%61dmin")]
    [InlineData("/public/../admin")]
    [InlineData("/admin?x=/public")]
    public async Task PathIsMatchedAsTheServerWillSeeIt_DecodedAndWithoutDotSegments(string target)
    {
        // Raw bytes, because HttpClient would normalize the target itself.
        await using MeshFixture mesh = await MeshFixture.StartAsync(HttpPorts);
        mesh.Api.Policies.Set([PathPolicy("no-admin", PolicyAction.Deny, "/admin")]);

        await using TunnelStream tunnel = await mesh.Web.Pool.OpenAsync(mesh.Api.Peer, HttpPort);
        await tunnel.WriteAsync(Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n"));
        await tunnel.FlushAsync();
        using var cancel = new CancellationTokenSource(Functional);
        using var answer = new MemoryStream();
        await tunnel.CopyToAsync(answer, cancel.Token);
        string response = Encoding.ASCII.GetString(answer.ToArray());

        Assert.StartsWith("HTTP/1.1 403 Forbidden", response);
        Assert.EndsWith("\r\n\r\nRBAC: access denied", response);
        Assert.Empty(mesh.Api.HttpGuest!.Calls);
    }

    [Fact]
    public async Task SpoofedXfcc_IsReplacedByTheVerifiedCaller()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync(HttpPorts);
        using var client = new TunnelHttpClient(mesh.Web, mesh.Api, HttpPort, HttpVersion.Version11);

        (HttpStatusCode status, string body) = await client.SendAsync(HttpMethod.Get, "/", null,
            ("x-forwarded-client-cert", "By=spiffe://example.org/ns/default/sa/api;URI=spiffe://example.org/ns/default/sa/admin"));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("xfcc=By=spiffe://example.org/ns/default/sa/api;URI=spiffe://example.org/ns/default/sa/web\n", body);
        Assert.DoesNotContain("sa/admin", body);
    }

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task PolicyAppliedDuringSlowResponse_AbortsIt_AndLaterRequestsAreDecidedAfresh(string version)
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync(HttpPorts);
        var audits = new List<AuditRecord>();
        mesh.Api.Server.Connections.Audited += (_, record) => audits.Add(record);
        using var client = new TunnelHttpClient(mesh.Web, mesh.Api, HttpPort, Version.Parse(version));
        using var cancel = new CancellationTokenSource(Functional);

        HttpResponseMessage slow = await client.StartAsync("/slow", cancel.Token);
        Stream body = await slow.Content.ReadAsStreamAsync(cancel.Token);
        byte[] first = new byte[6];
        await body.ReadExactlyAsync(first, cancel.Token);
        Assert.Equal("first\n", Encoding.ASCII.GetString(first));
        Assert.Equal(1, mesh.Api.Server.Connections.Count);

        mesh.Api.Policies.Set([PathPolicy("no-slow", PolicyAction.Deny, "/slow")]);

        await Assert.ThrowsAnyAsync<IOException>(() => body.CopyToAsync(Stream.Null, cancel.Token));
        slow.Dispose(); // frees the client's one connection slot for the next request
        await mesh.Api.HttpGuest!.SlowAborted.Task.WaitAsync(Functional);
        AuditRecord audit = Assert.Single(audits);
        Assert.Equal("revoked", audit.Action);
        Assert.Equal(LiveConnectionRegistry.TriggerPolicy, audit.Trigger);
        Assert.Equal("/slow", audit.Path);
        Assert.Equal("GET", audit.Method);
        Assert.Equal(0, mesh.Api.Server.Connections.Count);
        (HttpStatusCode root, _) = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, root);
        // HTTP/2 lost only the stream; HTTP/1.1 had to lose its connection.
        Assert.Equal(version == "2.0" ? 1 : 2, client.FlowsOpened);
    }

    [Fact]
    public async Task GarbageBytes_GetKestrels400_AndTheNextFlowIsServed()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync(HttpPorts);

        await using (TunnelStream garbage = await mesh.Web.Pool.OpenAsync(mesh.Api.Peer, HttpPort))
        {
            await garbage.WriteAsync("\u0001\u0002 not http at all\r\n\r\n"u8.ToArray());
            await garbage.FlushAsync();
            using var cancel = new CancellationTokenSource(Functional);
            using var answer = new MemoryStream();
            await garbage.CopyToAsync(answer, cancel.Token); // Kestrel closes after a 400
            Assert.StartsWith("HTTP/1.1 400 Bad Request", Encoding.ASCII.GetString(answer.ToArray()));
        }

        using var client = new TunnelHttpClient(mesh.Web, mesh.Api, HttpPort, HttpVersion.Version20);
        (HttpStatusCode status, _) = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Single(mesh.Api.HttpGuest!.Calls);
    }

    [Fact]
    public async Task PortNotDeclaredHttp_IsStillSplicedAsTcp_AndDecidedOnce()
    {
        await using MeshFixture mesh = await MeshFixture.StartAsync(HttpPorts);
        // On TCP a DENY rule's HTTP fields are ignored: it refuses the whole flow (fail closed).
        mesh.Api.Policies.Set([PathPolicy("no-admin", PolicyAction.Deny, "/admin*")]);

        TunnelRefusedException refused = await Assert.ThrowsAsync<TunnelRefusedException>(() => mesh.Web.Pool.OpenAsync(mesh.Api.Peer, TcpPort));
        mesh.Api.Policies.Set([]);
        await using TunnelStream tunnel = await mesh.Web.Pool.OpenAsync(mesh.Api.Peer, TcpPort);
        await tunnel.WriteAsync("GET /admin HTTP/1.1\r\n\r\n"u8.ToArray());
        await tunnel.FlushAsync();
        byte[] echoed = new byte[23];
        using var cancel = new CancellationTokenSource(Functional);
        await tunnel.ReadExactlyAsync(echoed, cancel.Token);

        Assert.Equal(HttpStatusCode.Forbidden, refused.Status);
        Assert.Equal("GET /admin HTTP/1.1\r\n\r\n", Encoding.ASCII.GetString(echoed));
        Assert.Contains((mesh.Web.MeshAddress, TcpPort), mesh.Api.Guest.Calls);
        Assert.Empty(mesh.Api.HttpGuest!.Calls);
    }

    private static AuthorizationPolicy PathPolicy(string name, PolicyAction action, params string[] paths) => new()
    {
        Name = name,
        Namespace = "default",
        Action = action,
        Rules = [new PolicyRule { To = [new PolicyOperation { Paths = Matches(paths) }] }],
    };

    private static List<StringMatch> Matches(params string[] patterns)
    {
        var matches = new List<StringMatch>();
        foreach (string pattern in patterns)
        {
            Assert.True(StringMatch.TryParse(pattern, out StringMatch match, out string? error), error);
            matches.Add(match);
        }

        return matches;
    }
}
