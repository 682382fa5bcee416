using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Authority;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Identity.Join;

/// <summary>
/// The root-holding node's side of the join exchange (<see cref="JoinProtocol"/>). It presents its own
/// node SVID (root-signed) in TLS, sends the root in <c>hello</c>, and for a <c>join</c> checks in this
/// order: the request is well-formed (node name a DNS-1123 label, two PKCS#10 requests whose
/// signatures verify, for two different EC keys), the token and its proof bound to this TLS session,
/// the name is free; then it issues a node CA and node SVID for the joiner's public keys, marks the
/// token used and the name taken (durably), and answers <c>joined</c>. Every refusal is one line in
/// the log and the same line in the <c>error</c> answer. A malformed or hostile peer costs one
/// connection: every failure is caught, bounded in time by <see cref="Timeout"/>, and returned.
/// Thread-safe; connections are handled concurrently, issuing is serialized.
/// <para>
/// The same server renews node certificates (ALPN <c>beemesh-renew/1</c>): the client certificate must
/// be a node SVID the root signed, valid now, of a node not revoked (<see cref="IsRevoked"/>) and this
/// root gave the name to; the request must name that node. The answer is a new node CA and node SVID
/// for the keys the node sent (new keys: the server refuses a request reusing the presented key).
/// </para>
/// </summary>
public sealed class JoinServer : IDisposable
{
    /// <summary>Default bound on one connection, handshake included.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan ServerSvidValidity = TimeSpan.FromDays(1);

    private readonly CertificateAuthority _authority;
    private readonly JoinTokenStore _tokens;
    private readonly NodeRegistry _registry;
    private readonly string _nodeName;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _issuing = new(1, 1);
    private readonly Lock _gate = new();
    private SslStreamCertificateContext? _context;
    private X509Certificate2? _svid;

    /// <summary>
    /// A server issuing from <paramref name="authority"/> (which must hold the root), presenting the
    /// node SVID of <paramref name="nodeName"/>, which it records as taken.
    /// </summary>
    public JoinServer(CertificateAuthority authority, JoinTokenStore tokens, NodeRegistry registry, string nodeName, ILogger? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(registry);
        if (!authority.HoldsRoot)
        {
            throw new ArgumentException("Only the node holding the trust domain's root key serves joins.", nameof(authority));
        }

        if (NodeNames.Check(nodeName) is string error)
        {
            throw new ArgumentException(error, nameof(nodeName));
        }

        _authority = authority;
        _tokens = tokens;
        _registry = registry;
        _nodeName = nodeName;
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _registry.TryAdd(nodeName);
    }

    /// <summary>Bound on one connection, handshake included.</summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;

    /// <summary>
    /// True for the names of removed nodes, whose renewals are refused (set by the agent from its revoked
    /// set); null refuses none.
    /// </summary>
    public Func<string, bool>? IsRevoked { get; set; }

    /// <summary>Validity of renewed node certificates (default <see cref="CertificateAuthority.DefaultNodeValidity"/>).</summary>
    public TimeSpan? NodeValidity { get; set; }

    /// <summary>
    /// A server for the first node whose state directory is <paramref name="stateDirectory"/>: its token
    /// store (<see cref="JoinTokenStore.RelativePath"/>) and node registry (<see cref="NodeRegistry.RelativePath"/>) live there.
    /// </summary>
    public static JoinServer Create(CertificateAuthority authority, string stateDirectory, string nodeName, ILogger? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(authority);
        return new JoinServer(
            authority,
            new JoinTokenStore(stateDirectory, JoinToken.FingerprintOf(authority.Root), timeProvider),
            new NodeRegistry(stateDirectory, timeProvider),
            nodeName,
            logger,
            timeProvider);
    }

    /// <summary>
    /// TLS options for a join or renewal connection: TLS 1.3, ALPN <c>beemesh-join/1</c> or
    /// <c>beemesh-renew/1</c>, this node's SVID; a client certificate is asked for (a renewing node sends
    /// its node SVID, a joiner has none) and checked by the renewal handler.
    /// </summary>
    public SslServerAuthenticationOptions CreateServerOptions() => new()
    {
        EnabledSslProtocols = SslProtocols.Tls13,
        ApplicationProtocols = [JoinProtocol.ApplicationProtocol, JoinProtocol.RenewalProtocol],
        ClientCertificateRequired = true,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        ServerCertificateContext = CurrentContext(),
        RemoteCertificateValidationCallback = static (_, _, _, _) => true,
    };

    /// <summary>Runs the TLS handshake on an accepted connection, then <see cref="HandleAsync"/>. Never throws for the peer's faults.</summary>
    public async Task<JoinServerResult> AcceptAsync(Stream connection, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        var tls = new SslStream(connection, leaveInnerStreamOpen: false);
        await using (tls.ConfigureAwait(false))
        {
            try
            {
                await tls.AuthenticateAsServerAsync(CreateServerOptions(), timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // Whatever a peer sends before or during the handshake costs this connection only.
                return Log(new JoinServerResult(false, null, null, $"join connection failed in the TLS handshake: {e.Message}"));
            }

            return await HandleAsync(tls, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Serves one join on an authenticated <paramref name="stream"/> (ALPN <c>beemesh-join/1</c>, this
    /// server's certificate). Never throws for the peer's faults; the caller disposes the stream.
    /// </summary>
    public async Task<JoinServerResult> HandleAsync(SslStream stream, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        CancellationToken ct = timeout.Token;
        string? nodeName = null;
        try
        {
            if (stream.LocalCertificate is not { } local)
            {
                return Log(new JoinServerResult(false, null, null, "join connection has no server certificate"));
            }

            if (stream.NegotiatedApplicationProtocol == JoinProtocol.RenewalProtocol)
            {
                return await HandleRenewalAsync(stream, ct).ConfigureAwait(false);
            }

            if (stream.NegotiatedApplicationProtocol != JoinProtocol.ApplicationProtocol)
            {
                await TrySendAsync(stream, JoinRefusal.BadRequest, $"join refused: the connection did not negotiate ALPN {JoinProtocol.ApplicationProtocolName}").ConfigureAwait(false);
                return Log(new JoinServerResult(false, JoinRefusal.BadRequest, null, $"join connection without ALPN {JoinProtocol.ApplicationProtocolName}"));
            }

            byte[] serverCertificate = local.GetRawCertData();
            await JoinProtocol.WriteAsync(stream, new JoinMessage { Type = "hello", Root = _authority.Root.RawData }, ct).ConfigureAwait(false);
            JoinMessage request = await JoinProtocol.ReadAsync(stream, ct).ConfigureAwait(false);
            if (request.Type == "refuse")
            {
                return Log(new JoinServerResult(false, null, null, $"a joiner refused this node: {Clip(request.Message)}"));
            }

            nodeName = request.NodeName;
            (JoinRefusal? refusal, string line, JoinMessage answer) = await ProcessAsync(request, serverCertificate, ct).ConfigureAwait(false);
            await JoinProtocol.WriteAsync(stream, answer, ct).ConfigureAwait(false);
            if (refusal is null)
            {
                JoinLog.Joined(_logger, nodeName!, request.TokenId!);
                return new JoinServerResult(true, null, nodeName, line);
            }

            return Log(new JoinServerResult(false, refusal, nodeName, line));
        }
        catch (Exception e) when (e is InvalidDataException or IOException or EndOfStreamException or AuthenticationException
            || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            string line = e is OperationCanceledException
                ? $"join connection timed out after {Timeout.TotalSeconds:0} s"
                : $"join connection dropped: {e.Message}";
            if (e is InvalidDataException)
            {
                await TrySendAsync(stream, JoinRefusal.BadRequest, "join refused: " + e.Message).ConfigureAwait(false);
            }

            return Log(new JoinServerResult(false, e is InvalidDataException ? JoinRefusal.BadRequest : null, nodeName, line));
        }
        catch (Exception e) when (e is InvalidOperationException or CryptographicException or UnauthorizedAccessException)
        {
            // A fault of this node (its token store, registry or CA), not the peer's: the peer learns
            // only that, the log gets the reason.
            await TrySendAsync(stream, JoinRefusal.ServerError, "join failed on the server; its log says why").ConfigureAwait(false);
            return Log(new JoinServerResult(false, JoinRefusal.ServerError, nodeName, $"join of {Clip(nodeName)} failed on this node: {e.Message}"));
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _issuing.Dispose();
        _context = null;
        _svid?.Dispose();
    }

    private async Task<(JoinRefusal? Refusal, string Line, JoinMessage Answer)> ProcessAsync(JoinMessage request, byte[] serverCertificate, CancellationToken ct)
    {
        if (request.Type != "join" || request.TokenId is null || request.NodeName is null
            || request.NodeCaRequest is null || request.NodeSvidRequest is null || request.Proof is null)
        {
            return Refuse(JoinRefusal.BadRequest, "join refused: the request lacks a field or is not a join");
        }

        string tokenId = request.TokenId;
        string name = request.NodeName;
        if (tokenId.Length != JoinToken.IdLength || tokenId.AsSpan().IndexOfAnyExcept("abcdefghijklmnopqrstuvwxyz234567") >= 0)
        {
            return Refuse(JoinRefusal.BadRequest, "join refused: the token id is malformed");
        }

        if (NodeNames.Check(name) is string nameError)
        {
            return Refuse(JoinRefusal.BadName, "join refused: " + nameError);
        }

        if (!TryLoadRequest(request.NodeCaRequest, out PublicKey? caKey) || !TryLoadRequest(request.NodeSvidRequest, out PublicKey? svidKey))
        {
            return Refuse(JoinRefusal.BadRequest, "join refused: a certificate signing request is malformed, not EC P-256, or its signature does not verify");
        }

        if (caKey.EncodedKeyValue.RawData.AsSpan().SequenceEqual(svidKey.EncodedKeyValue.RawData))
        {
            return Refuse(JoinRefusal.BadRequest, "join refused: the node CA and the node SVID must have different keys");
        }

        byte[] transcript = JoinProof.Transcript(tokenId, serverCertificate, _authority.Root.RawData, name, request.NodeCaRequest, request.NodeSvidRequest);
        await _issuing.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            JoinTokenCheck check = _tokens.Check(tokenId, transcript, request.Proof);
            if (check != JoinTokenCheck.Valid)
            {
                return Refuse(ToRefusal(check), TokenLine(check, tokenId));
            }

            if (_registry.Contains(name))
            {
                return Refuse(JoinRefusal.NameTaken, $"join refused: node name {name} is already taken");
            }

            (X509Certificate2 nodeCa, X509Certificate2 nodeSvid) = _authority.IssueNodeCertificates(name, caKey, svidKey, NodeValidity);
            using (nodeCa)
            using (nodeSvid)
            {
                // Redeem re-checks under the store's file lock, so a token used meanwhile stays refused.
                check = _tokens.Redeem(tokenId, transcript, request.Proof, name);
                if (check != JoinTokenCheck.Valid)
                {
                    return Refuse(ToRefusal(check), TokenLine(check, tokenId));
                }

                _registry.TryAdd(name);
                return (null, $"node {name} joined (token {tokenId})", new JoinMessage
                {
                    Type = "joined",
                    NodeCa = nodeCa.RawData,
                    NodeSvid = nodeSvid.RawData,
                    Bundle = [_authority.Root.RawData],
                });
            }
        }
        finally
        {
            _issuing.Release();
        }
    }

    // One renewal: the client certificate names the node; the request must be for it, with new keys.
    private async Task<JoinServerResult> HandleRenewalAsync(SslStream stream, CancellationToken ct)
    {
        JoinMessage request = await JoinProtocol.ReadAsync(stream, ct).ConfigureAwait(false);
        (JoinRefusal? refusal, string line, JoinMessage answer, string? nodeName) = await ProcessRenewalAsync(stream.RemoteCertificate, request, ct).ConfigureAwait(false);
        await JoinProtocol.WriteAsync(stream, answer, ct).ConfigureAwait(false);
        if (refusal is null)
        {
            JoinLog.Renewed(_logger, nodeName!);
            return new JoinServerResult(true, null, nodeName, line);
        }

        return Log(new JoinServerResult(false, refusal, nodeName, line));
    }

    private async Task<(JoinRefusal? Refusal, string Line, JoinMessage Answer, string? NodeName)> ProcessRenewalAsync(X509Certificate? remote, JoinMessage request, CancellationToken ct)
    {
        if (remote is null)
        {
            return Renewal(JoinRefusal.NotANode, "renewal refused: no node SVID was presented", null);
        }

        string? presented;
        string? error;
        using (X509Certificate2 certificate = X509CertificateLoader.LoadCertificate(remote.GetRawCertData()))
        {
            presented = NodeSvidValidator.Validate(certificate, _authority.Bundle, _authority.TrustDomain, _time.GetUtcNow(), out error);
            if (presented is not null && request.NodeSvidRequest is not null && TryLoadRequest(request.NodeSvidRequest, out PublicKey? reused)
                && certificate.PublicKey.EncodedKeyValue.RawData.AsSpan().SequenceEqual(reused.EncodedKeyValue.RawData))
            {
                return Renewal(JoinRefusal.BadRequest, $"renewal refused: node {presented} asked for its current key again; a renewal takes a new key", presented);
            }
        }

        if (presented is null)
        {
            return Renewal(JoinRefusal.NotANode, $"renewal refused: the presented certificate is not a current node SVID ({error})", null);
        }

        if (request.Type != "renew" || request.NodeName is null || request.NodeCaRequest is null || request.NodeSvidRequest is null)
        {
            return Renewal(JoinRefusal.BadRequest, "renewal refused: the request lacks a field or is not a renewal", presented);
        }

        if (request.NodeName != presented)
        {
            return Renewal(JoinRefusal.NameMismatch, $"renewal refused: node {presented} asked for the certificates of {Clip(request.NodeName)}", presented);
        }

        if (IsRevoked?.Invoke(presented) == true)
        {
            return Renewal(JoinRefusal.Revoked, $"renewal refused: node {presented} was removed from the mesh", presented);
        }

        if (!_registry.Contains(presented) || presented == _nodeName)
        {
            return Renewal(JoinRefusal.NotANode, $"renewal refused: node {presented} did not join through this node", presented);
        }

        if (!TryLoadRequest(request.NodeCaRequest, out PublicKey? caKey) || !TryLoadRequest(request.NodeSvidRequest, out PublicKey? svidKey))
        {
            return Renewal(JoinRefusal.BadRequest, "renewal refused: a certificate signing request is malformed, not EC P-256, or its signature does not verify", presented);
        }

        if (caKey.EncodedKeyValue.RawData.AsSpan().SequenceEqual(svidKey.EncodedKeyValue.RawData))
        {
            return Renewal(JoinRefusal.BadRequest, "renewal refused: the node CA and the node SVID must have different keys", presented);
        }

        await _issuing.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            (X509Certificate2 nodeCa, X509Certificate2 nodeSvid) = _authority.IssueNodeCertificates(presented, caKey, svidKey, NodeValidity);
            using (nodeCa)
            using (nodeSvid)
            {
                return (null, $"node {presented} renewed its node certificates (valid until {nodeSvid.NotAfter.ToUniversalTime():u})", new JoinMessage
                {
                    Type = "renewed",
                    NodeCa = nodeCa.RawData,
                    NodeSvid = nodeSvid.RawData,
                    Bundle = [_authority.Root.RawData],
                }, presented);
            }
        }
        finally
        {
            _issuing.Release();
        }
    }

    private static (JoinRefusal?, string, JoinMessage, string?) Renewal(JoinRefusal refusal, string line, string? nodeName) =>
        (refusal, line, new JoinMessage { Type = "error", Code = refusal.ToString(), Message = line }, nodeName);

    private static (JoinRefusal?, string, JoinMessage) Refuse(JoinRefusal refusal, string line) =>
        (refusal, line, new JoinMessage { Type = "error", Code = refusal.ToString(), Message = line });

    private static JoinRefusal ToRefusal(JoinTokenCheck check) => check switch
    {
        JoinTokenCheck.Unknown => JoinRefusal.UnknownToken,
        JoinTokenCheck.Expired => JoinRefusal.ExpiredToken,
        JoinTokenCheck.AlreadyUsed => JoinRefusal.UsedToken,
        _ => JoinRefusal.BadSecret,
    };

    private static string TokenLine(JoinTokenCheck check, string tokenId) => check switch
    {
        JoinTokenCheck.Unknown => $"join refused: token {tokenId} is unknown to this trust domain",
        JoinTokenCheck.Expired => $"join refused: token {tokenId} has expired",
        JoinTokenCheck.AlreadyUsed => $"join refused: token {tokenId} was already used",
        _ => $"join refused: the secret does not match token {tokenId}",
    };

    // Only the public key of a request is used; its subject and attributes are ignored. Loading
    // verifies the request's self-signature, i.e. that the joiner holds the private key.
    private static bool TryLoadRequest(byte[] der, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out PublicKey? key)
    {
        key = null;
        try
        {
            CertificateRequest request = CertificateRequest.LoadSigningRequest(
                der, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.Default, RSASignaturePadding.Pkcs1);
            using ECDsa? ec = request.PublicKey.GetECDsaPublicKey();
            if (ec is null || ec.KeySize != 256)
            {
                return false;
            }

            key = request.PublicKey;
            return true;
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    private static async Task TrySendAsync(Stream stream, JoinRefusal refusal, string line)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await JoinProtocol.WriteAsync(stream, new JoinMessage { Type = "error", Code = refusal.ToString(), Message = line }, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or NotSupportedException)
        {
            // The peer is gone; the log line is what remains.
        }
    }

    private JoinServerResult Log(JoinServerResult result)
    {
        JoinLog.Refused(_logger, result.Message);
        return result;
    }

    // A peer's text goes into one log line: bounded, and with no control characters to forge lines.
    private static string Clip(string? text) =>
        text is null ? "(no reason)"
        : new string([.. (text.Length <= 400 ? text : text[..400] + "...").Select(c => char.IsControl(c) ? ' ' : c)]);

    // This node's SVID for join connections, re-issued at half-life.
    private SslStreamCertificateContext CurrentContext()
    {
        lock (_gate)
        {
            DateTimeOffset now = _time.GetUtcNow();
            if (_context is null || _svid is null || now >= _svid.NotBefore.ToUniversalTime() + ((_svid.NotAfter - _svid.NotBefore) / 2))
            {
                using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                var publicKey = new CertificateRequest("CN=unused", key, HashAlgorithmName.SHA256).PublicKey;
                using X509Certificate2 issued = _authority.IssueNodeSvid(_nodeName, publicKey, ServerSvidValidity);
                _svid?.Dispose();
                _svid = issued.CopyWithPrivateKey(key);
                _context = SslStreamCertificateContext.Create(_svid, [], offline: true);
            }

            return _context;
        }
    }
}
