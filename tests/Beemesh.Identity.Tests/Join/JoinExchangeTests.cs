using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Authority;
using Beemesh.Identity.Join;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Identity.Tests.Join;

/// <summary>The join exchange over real TLS on loopback: a first node serving, joiners connecting.</summary>
public sealed class JoinExchangeTests : IAsyncLifetime
{
    private static readonly TimeSpan Guard = JoinServerHarness.Guard;

    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private readonly CertificateAuthority _root;
    private readonly JoinTokenStore _tokens;
    private readonly JoinServer _server;
    private readonly JoinServerHarness _serving;

    public JoinExchangeTests()
    {
        string first = _dir.File("first");
        _root = CertificateAuthority.LoadOrCreate(first, timeProvider: _time);
        _tokens = new JoinTokenStore(first, JoinToken.FingerprintOf(_root.Root), _time);
        _server = new JoinServer(_root, _tokens, new NodeRegistry(first, _time), "first", timeProvider: _time);
        _serving = new JoinServerHarness(_server);
    }

    private IReadOnlyList<EndPoint> Endpoints => [_serving.Endpoint];

    /// <inheritdoc />
    public Task InitializeAsync() => Task.CompletedTask;

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        await _serving.DisposeAsync();
        _server.Dispose();
        _root.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task NodeJoinsAndIssuesWorkloadSvidsTheRootBundleAccepts()
    {
        JoinToken token = _tokens.Create();
        using NodeCredentials credentials = await JoinClient.JoinAsync(Endpoints, token, "worker-1", CancellationToken.None, timeProvider: _time).WaitAsync(Guard);
        JoinServerResult served = await NextResultAsync();
        Assert.True(served.Joined, served.Message);
        Assert.Equal("worker-1", served.NodeName);

        Assert.Equal("worker-1", credentials.NodeName);
        Assert.Equal("example.org", credentials.TrustDomain);
        Assert.Equal(_root.Root.RawData, credentials.Root.RawData);
        Assert.True(credentials.NodeCa.HasPrivateKey);
        Assert.True(credentials.NodeSvid.HasPrivateKey);
        Assert.Equal("worker-1", NodeSvidValidator.Validate(credentials.NodeSvid, _root.Bundle, "example.org", _time.GetUtcNow(), out _));

        // The joined node signs workload SVIDs offline; peers holding only the root accept them.
        string state = _dir.File("worker-1");
        NodeCredentialStore.Save(state, credentials);
        using CertificateAuthority node = CertificateAuthority.LoadOrCreate(state, timeProvider: _time);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 svid = node.IssueX509Svid("spiffe://example.org/ns/shop/sa/web", key);
        Assert.Equal(SvidValidationResult.Valid, SvidValidator.Validate(svid, node.Intermediates, _root.Bundle, "example.org", _time.GetUtcNow(), out SpiffeId? id));
        Assert.Equal("spiffe://example.org/ns/shop/sa/web", id!.ToString());
    }

    [Fact]
    public async Task EnsureJoinedSavesCredentialsAndReusesThemWithoutAToken()
    {
        string state = _dir.File("worker-1");
        JoinToken token = _tokens.Create();
        using (NodeCredentials joined = await NodeJoin.EnsureJoinedAsync(state, "worker-1", Endpoints, token.ToString(), timeProvider: _time).WaitAsync(Guard))
        {
            Assert.Equal("worker-1", joined.NodeName);
        }

        Assert.True((await NextResultAsync()).Joined);
        Assert.True(NodeCredentialStore.Exists(state));

        // Restart without a token and with the first node gone: the saved credentials are reused.
        _serving.StopListening();
        using (NodeCredentials again = await NodeJoin.EnsureJoinedAsync(state, "worker-1", Endpoints, token: null).WaitAsync(Guard))
        {
            Assert.Equal("worker-1", again.NodeName);
        }

        InvalidOperationException other = await Assert.ThrowsAsync<InvalidOperationException>(
            () => NodeJoin.EnsureJoinedAsync(state, "worker-2", Endpoints, token: null));
        Assert.Contains("worker-1", other.Message);
        InvalidOperationException noToken = await Assert.ThrowsAsync<InvalidOperationException>(
            () => NodeJoin.EnsureJoinedAsync(_dir.File("fresh"), "worker-3", Endpoints, token: null));
        Assert.Contains("--token", noToken.Message);
        InvalidOperationException rootHolder = await Assert.ThrowsAsync<InvalidOperationException>(
            () => NodeJoin.EnsureJoinedAsync(_dir.File("first"), "worker-4", Endpoints, token.ToString()));
        Assert.Contains("root key", rootHolder.Message);
    }

    [Fact]
    public async Task WrongSecretIsRefusedOnBothSidesAndDoesNotUseTheToken()
    {
        JoinToken token = _tokens.Create();
        JoinToken wrong = JoinToken.Parse($"bmt1.{token.Id}.{new string('b', 26)}.sha256-{token.RootFingerprint}");
        JoinException e = await Assert.ThrowsAsync<JoinException>(() => JoinClient.JoinAsync(Endpoints, wrong, "worker-1").WaitAsync(Guard));
        Assert.Equal(JoinRefusal.BadSecret, e.Refusal);
        Assert.Equal($"join refused: the secret does not match token {token.Id}", e.Message);
        JoinServerResult served = await NextResultAsync();
        Assert.Equal(JoinRefusal.BadSecret, served.Refusal);
        Assert.Equal(e.Message, served.Message);

        using NodeCredentials joined = await JoinClient.JoinAsync(Endpoints, token, "worker-1", timeProvider: _time).WaitAsync(Guard);
        Assert.True((await NextResultAsync()).Joined);
    }

    [Fact]
    public async Task ExpiredTokenIsRefused()
    {
        JoinToken token = _tokens.Create(TimeSpan.FromMinutes(15));
        _time.Advance(TimeSpan.FromMinutes(16));
        JoinException e = await Assert.ThrowsAsync<JoinException>(() => JoinClient.JoinAsync(Endpoints, token, "worker-1", timeProvider: _time).WaitAsync(Guard));
        Assert.Equal(JoinRefusal.ExpiredToken, e.Refusal);
        Assert.Equal($"join refused: token {token.Id} has expired", e.Message);
        Assert.Equal(e.Message, (await NextResultAsync()).Message);
    }

    [Fact]
    public async Task ReusedTokenIsRefused()
    {
        JoinToken token = _tokens.Create();
        using NodeCredentials first = await JoinClient.JoinAsync(Endpoints, token, "worker-1", timeProvider: _time).WaitAsync(Guard);
        Assert.True((await NextResultAsync()).Joined);
        JoinException e = await Assert.ThrowsAsync<JoinException>(() => JoinClient.JoinAsync(Endpoints, token, "worker-2", timeProvider: _time).WaitAsync(Guard));
        Assert.Equal(JoinRefusal.UsedToken, e.Refusal);
        Assert.Equal($"join refused: token {token.Id} was already used", e.Message);
        Assert.Equal(e.Message, (await NextResultAsync()).Message);
    }

    [Fact]
    public async Task UnknownTokenIsRefused()
    {
        JoinToken token = JoinToken.Parse($"bmt1.zzzzzzzz.{new string('c', 26)}.sha256-{JoinToken.FingerprintOf(_root.Root)}");
        JoinException e = await Assert.ThrowsAsync<JoinException>(() => JoinClient.JoinAsync(Endpoints, token, "worker-1", timeProvider: _time).WaitAsync(Guard));
        Assert.Equal(JoinRefusal.UnknownToken, e.Refusal);
        Assert.Equal("join refused: token zzzzzzzz is unknown to this trust domain", e.Message);
        Assert.Equal(e.Message, (await NextResultAsync()).Message);
    }

    [Fact]
    public async Task FingerprintMismatchIsRefusedBeforeAnythingOfTheTokenIsSent()
    {
        using CertificateAuthority foreign = CertificateAuthority.LoadOrCreate(_dir.File("foreign"));
        // A genuine token of another trust domain, brought to this one.
        JoinToken token = new JoinTokenStore(_dir.File("foreign"), JoinToken.FingerprintOf(foreign.Root)).Create();
        JoinException e = await Assert.ThrowsAsync<JoinException>(() => JoinClient.JoinAsync(Endpoints, token, "worker-1", timeProvider: _time).WaitAsync(Guard));
        Assert.Equal(JoinRefusal.RootMismatch, e.Refusal);
        Assert.Equal(
            $"join refused: the trust domain's root fingerprint is {JoinToken.FingerprintOf(_root.Root)}, the token expects {JoinToken.FingerprintOf(foreign.Root)}",
            e.Message);
        JoinServerResult served = await NextResultAsync();
        Assert.False(served.Joined);
        Assert.Null(served.NodeName);
        Assert.Equal("a joiner refused this node: " + e.Message, served.Message);
    }

    [Fact]
    public async Task TakenNodeNameIsRefused()
    {
        using NodeCredentials first = await JoinClient.JoinAsync(Endpoints, _tokens.Create(), "worker-1", timeProvider: _time).WaitAsync(Guard);
        Assert.True((await NextResultAsync()).Joined);
        JoinToken second = _tokens.Create();
        JoinException e = await Assert.ThrowsAsync<JoinException>(() => JoinClient.JoinAsync(Endpoints, second, "worker-1", timeProvider: _time).WaitAsync(Guard));
        Assert.Equal(JoinRefusal.NameTaken, e.Refusal);
        Assert.Equal("join refused: node name worker-1 is already taken", e.Message);
        Assert.Equal(e.Message, (await NextResultAsync()).Message);

        // The first node's own name is taken too; the refused token is still good for another name.
        JoinException own = await Assert.ThrowsAsync<JoinException>(() => JoinClient.JoinAsync(Endpoints, second, "first", timeProvider: _time).WaitAsync(Guard));
        Assert.Equal(JoinRefusal.NameTaken, own.Refusal);
        await NextResultAsync();
        using NodeCredentials other = await JoinClient.JoinAsync(Endpoints, second, "worker-2", timeProvider: _time).WaitAsync(Guard);
        Assert.True((await NextResultAsync()).Joined);
    }

    [Fact]
    public async Task ProofRelayedByAnotherNodeIsRefused()
    {
        // worker-1 joined legitimately, so it holds a root-signed node SVID; it now poses as a join
        // server and relays a joiner's request to the real one.
        using NodeCredentials relay = await JoinClient.JoinAsync(Endpoints, _tokens.Create(), "worker-1", timeProvider: _time).WaitAsync(Guard);
        Assert.True((await NextResultAsync()).Joined);
        using var impostor = new TcpListener(IPAddress.Loopback, 0);
        impostor.Start();
        Task<JoinMessage> relayed = RelayAsync(impostor, relay.NodeSvid);

        JoinToken token = _tokens.Create();
        JoinException e = await Assert.ThrowsAsync<JoinException>(() => JoinClient.JoinAsync([impostor.LocalEndpoint], token, "worker-2", timeProvider: _time).WaitAsync(Guard));
        Assert.Equal(JoinRefusal.BadSecret, e.Refusal);
        Assert.Equal("error", (await relayed.WaitAsync(Guard)).Type);
        Assert.Equal(JoinRefusal.BadSecret, (await NextResultAsync()).Refusal);

        // The token was not consumed by the relayed attempt.
        using NodeCredentials direct = await JoinClient.JoinAsync(Endpoints, token, "worker-2", timeProvider: _time).WaitAsync(Guard);
        Assert.True((await NextResultAsync()).Joined);
    }

    [Fact]
    public async Task ServerWithTheRightRootButNoNodeIdentityIsRefused()
    {
        using var impostor = new TcpListener(IPAddress.Loopback, 0);
        impostor.Start();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=impostor", key, HashAlgorithmName.SHA256);
        using X509Certificate2 selfSigned = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(1));
        Task<JoinMessage> relayed = RelayAsync(impostor, selfSigned);

        JoinException e = await Assert.ThrowsAsync<JoinException>(() => JoinClient.JoinAsync([impostor.LocalEndpoint], _tokens.Create(), "worker-2", timeProvider: _time).WaitAsync(Guard));
        Assert.Equal(JoinRefusal.ServerIdentity, e.Refusal);
        Assert.StartsWith("join refused: the server is not a node of example.org", e.Message);
        Assert.Equal("refuse", (await relayed.WaitAsync(Guard)).Type);
    }

    // Accepts one joiner with the given certificate, sends it the real root, and forwards whatever
    // it sends to the real server; returns what came back (or the joiner's refusal).
    private async Task<JoinMessage> RelayAsync(TcpListener impostor, X509Certificate2 certificate)
    {
        using TcpClient joiner = await impostor.AcceptTcpClientAsync();
        await using var front = new SslStream(joiner.GetStream());
        await front.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
        {
            ServerCertificate = certificate,
            ApplicationProtocols = [JoinProtocol.ApplicationProtocol],
        });
        await JoinProtocol.WriteAsync(front, new JoinMessage { Type = "hello", Root = _root.Root.RawData }, CancellationToken.None);
        JoinMessage request = await JoinProtocol.ReadAsync(front, CancellationToken.None);
        if (request.Type != "join")
        {
            return request;
        }

        using var upstream = new TcpClient();
        await upstream.ConnectAsync(_serving.Endpoint);
        await using var back = new SslStream(upstream.GetStream());
        await back.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "x",
            ApplicationProtocols = [JoinProtocol.ApplicationProtocol],
            RemoteCertificateValidationCallback = static (_, _, _, _) => true,
        });
        await JoinProtocol.ReadAsync(back, CancellationToken.None);
        await JoinProtocol.WriteAsync(back, request, CancellationToken.None);
        JoinMessage answer = await JoinProtocol.ReadAsync(back, CancellationToken.None);
        await JoinProtocol.WriteAsync(front, answer, CancellationToken.None);
        return answer;
    }

    [Fact]
    public async Task CorruptTokenStoreIsAServerErrorAndTheServerKeepsServing()
    {
        string store = Path.Combine(_dir.File("first"), "state", "tokens.json");
        JoinToken token = _tokens.Create();
        string saved = await File.ReadAllTextAsync(store);
        await File.WriteAllTextAsync(store, "{broken");
        JoinException e = await Assert.ThrowsAsync<JoinException>(() => JoinClient.JoinAsync(Endpoints, token, "worker-1", timeProvider: _time).WaitAsync(Guard));
        Assert.Equal(JoinRefusal.ServerError, e.Refusal);
        Assert.DoesNotContain(store, e.Message);
        JoinServerResult served = await NextResultAsync();
        Assert.Equal(JoinRefusal.ServerError, served.Refusal);
        Assert.Contains("tokens.json", served.Message);

        await File.WriteAllTextAsync(store, saved);
        using NodeCredentials joined = await JoinClient.JoinAsync(Endpoints, token, "worker-1", timeProvider: _time).WaitAsync(Guard);
        Assert.True((await NextResultAsync()).Joined);
    }

    [Fact]
    public async Task BadNodeNameIsRefusedByTheJoinerItself()
    {
        JoinException e = await Assert.ThrowsAsync<JoinException>(() => JoinClient.JoinAsync(Endpoints, _tokens.Create(), "Worker_1"));
        Assert.Equal(JoinRefusal.BadName, e.Refusal);
    }

    [Fact]
    public async Task GarbageBytesCostOneConnectionAndTheServerKeepsServing()
    {
        // Not TLS at all.
        using (var raw = new TcpClient())
        {
            await raw.ConnectAsync(_serving.Endpoint).WaitAsync(Guard);
            await raw.GetStream().WriteAsync(RandomNumberGenerator.GetBytes(512));
            JoinServerResult handshake = await NextResultAsync();
            Assert.False(handshake.Joined);
            Assert.Contains("TLS handshake", handshake.Message);
        }

        // TLS, then a frame of garbage: the server answers an error and closes.
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(_serving.Endpoint).WaitAsync(Guard);
            await using var tls = new SslStream(tcp.GetStream());
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "x",
                ApplicationProtocols = [JoinProtocol.ApplicationProtocol],
                RemoteCertificateValidationCallback = static (_, _, _, _) => true,
            }).WaitAsync(Guard);
            Assert.Equal(JoinProtocol.ApplicationProtocol, tls.NegotiatedApplicationProtocol);
            Assert.Equal("hello", (await JoinProtocol.ReadAsync(tls, CancellationToken.None).WaitAsync(Guard)).Type);
            await tls.WriteAsync(new byte[] { 0, 0, 0, 5, (byte)'{', (byte)'x', (byte)'x', (byte)'x', (byte)'}' });
            JoinMessage answer = await JoinProtocol.ReadAsync(tls, CancellationToken.None).WaitAsync(Guard);
            Assert.Equal("error", answer.Type);
            Assert.Equal(nameof(JoinRefusal.BadRequest), answer.Code);
            JoinServerResult served = await NextResultAsync();
            Assert.Equal(JoinRefusal.BadRequest, served.Refusal);
        }

        // An oversized frame header is refused without reading the body.
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(_serving.Endpoint).WaitAsync(Guard);
            await using var tls = new SslStream(tcp.GetStream());
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "x",
                ApplicationProtocols = [JoinProtocol.ApplicationProtocol],
                RemoteCertificateValidationCallback = static (_, _, _, _) => true,
            }).WaitAsync(Guard);
            await JoinProtocol.ReadAsync(tls, CancellationToken.None).WaitAsync(Guard);
            await tls.WriteAsync(new byte[] { 0x7f, 0xff, 0xff, 0xff });
            JoinServerResult served = await NextResultAsync();
            Assert.Equal(JoinRefusal.BadRequest, served.Refusal);
            Assert.Contains("outside", served.Message);
        }

        // TLS without the join ALPN: refused before anything is read.
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(_serving.Endpoint).WaitAsync(Guard);
            await using var tls = new SslStream(tcp.GetStream());
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "x",
                RemoteCertificateValidationCallback = static (_, _, _, _) => true,
            }).WaitAsync(Guard);
            JoinMessage answer = await JoinProtocol.ReadAsync(tls, CancellationToken.None).WaitAsync(Guard);
            Assert.Equal("error", answer.Type);
            JoinServerResult served = await NextResultAsync();
            Assert.Equal(JoinRefusal.BadRequest, served.Refusal);
            Assert.Contains("ALPN", served.Message);
        }

        using NodeCredentials joined = await JoinClient.JoinAsync(Endpoints, _tokens.Create(), "worker-1", timeProvider: _time).WaitAsync(Guard);
        Assert.True((await NextResultAsync()).Joined);
    }

    [Theory]
    [InlineData("signature algorithm")]
    [InlineData("curve")]
    public async Task SigningRequestTheRuntimeCannotLoadIsABadRequest(string patched)
    {
        // A well-formed request whose signature algorithm (ecdsa-with-SHA256 → an unassigned sibling)
        // or curve (prime256v1 → an unknown sibling) the runtime does not support.
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var svidKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        byte[] bad = new CertificateRequest("CN=x", caKey, HashAlgorithmName.SHA256).CreateSigningRequest();
        byte[] oid = patched == "curve" ? [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07] : [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];
        int at = bad.AsSpan().LastIndexOf(oid);
        Assert.True(at > 0);
        bad[at + oid.Length - 1] = patched == "curve" ? (byte)0x09 : (byte)0x0B;
        byte[] good = new CertificateRequest("CN=y", svidKey, HashAlgorithmName.SHA256).CreateSigningRequest();

        using var tcp = new TcpClient();
        await tcp.ConnectAsync(_serving.Endpoint).WaitAsync(Guard);
        await using var tls = new SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "x",
            ApplicationProtocols = [JoinProtocol.ApplicationProtocol],
            RemoteCertificateValidationCallback = static (_, _, _, _) => true,
        }).WaitAsync(Guard);
        await JoinProtocol.ReadAsync(tls, CancellationToken.None).WaitAsync(Guard);
        var request = new JoinMessage { Type = "join", TokenId = _tokens.Create().Id, NodeName = "worker-2", NodeCaRequest = bad, NodeSvidRequest = good, Proof = new byte[32] };
        await JoinProtocol.WriteAsync(tls, request, CancellationToken.None).WaitAsync(Guard);

        JoinMessage answer = await JoinProtocol.ReadAsync(tls, CancellationToken.None).WaitAsync(Guard);
        Assert.Equal("error", answer.Type);
        Assert.Equal(nameof(JoinRefusal.BadRequest), answer.Code);
        Assert.Contains("certificate signing request is malformed", answer.Message);
        JoinServerResult served = await NextResultAsync();
        Assert.Equal(JoinRefusal.BadRequest, served.Refusal);
    }

    [Fact]
    public async Task UnreachableEndpointsAreSkippedInOrder()
    {
        // A port with nothing listening (bound and closed) comes first.
        using var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        EndPoint dead = closed.LocalEndpoint;
        closed.Stop();
        using NodeCredentials joined = await JoinClient.JoinAsync([dead, _serving.Endpoint], _tokens.Create(), "worker-1", timeProvider: _time).WaitAsync(Guard);
        Assert.True((await NextResultAsync()).Joined);

        JoinException e = await Assert.ThrowsAsync<JoinException>(() => JoinClient.JoinAsync([dead], _tokens.Create(), "worker-2").WaitAsync(Guard));
        Assert.Equal(JoinRefusal.Unreachable, e.Refusal);
        Assert.Contains(dead.ToString()!, e.Message);
    }

    [Fact]
    public void EndpointListsParse()
    {
        IReadOnlyList<EndPoint> endpoints = JoinClient.ParseEndpoints("10.0.0.1:7000, [fd00::1]:7001,node-a.example:7002,10.0.0.2", 15010);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("10.0.0.1"), 7000), endpoints[0]);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("fd00::1"), 7001), endpoints[1]);
        Assert.Equal(new DnsEndPoint("node-a.example", 7002), endpoints[2]);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("10.0.0.2"), 15010), endpoints[3]);
        Assert.Throws<FormatException>(() => JoinClient.ParseEndpoints("10.0.0.1:99999", 1));
        Assert.Throws<FormatException>(() => JoinClient.ParseEndpoints(" , ", 1));
    }

    private Task<JoinServerResult> NextResultAsync() => _serving.NextResultAsync();
}
