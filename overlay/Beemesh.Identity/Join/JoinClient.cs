using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Authority;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;

namespace Beemesh.Identity.Join;

/// <summary>
/// The joining node's side of the join exchange (<see cref="JoinProtocol"/>). For each endpoint in
/// turn until one answers: TCP, TLS 1.3 with ALPN <c>beemesh-join/1</c>, then, before anything of
/// the token leaves this process, the root from <c>hello</c> must hash to the token's fingerprint,
/// carry a trust domain ID, and have signed the server's certificate as a node SVID. Only then are
/// the node CA and node SVID keys generated here (they never leave the node), requested with two
/// PKCS#10 requests and the token proof (<see cref="JoinProof"/>), and the answer checked: both
/// certificates for our keys and name, signed by that root. A refusal by either side is final and
/// raised as a <see cref="JoinException"/> with one line; an unreachable endpoint moves on to the next.
/// </summary>
public static class JoinClient
{
    /// <summary>Default bound on one attempt (connect, handshake and exchange).</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Joins through the first reachable endpoint of <paramref name="endpoints"/> and returns the node's credentials.</summary>
    public static async Task<NodeCredentials> JoinAsync(
        IReadOnlyList<EndPoint> endpoints, JoinToken token, string nodeName, CancellationToken cancellationToken = default, TimeSpan? timeout = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(token);
        if (NodeNames.Check(nodeName) is string nameError)
        {
            throw new JoinException(JoinRefusal.BadName, "join refused: " + nameError);
        }

        if (endpoints.Count == 0)
        {
            throw new ArgumentException("No endpoint to join through.", nameof(endpoints));
        }

        TimeProvider time = timeProvider ?? TimeProvider.System;
        return await FirstAnswerAsync(endpoints, timeout, "join failed: no endpoint answered",
            (endpoint, ct) => JoinThroughAsync(endpoint, token, nodeName, time, ct), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Tries <paramref name="attempt"/> through each endpoint in turn, each within <paramref name="timeout"/>
    /// (default <see cref="DefaultTimeout"/>), and returns the first answer. A refusal (<see cref="JoinException"/>)
    /// ends the tries; when every endpoint failed to answer, throws <see cref="JoinRefusal.Unreachable"/>
    /// with <paramref name="failureLine"/> and each endpoint's failure.
    /// </summary>
    internal static async Task<T> FirstAnswerAsync<T>(
        IReadOnlyList<EndPoint> endpoints, TimeSpan? timeout, string failureLine, Func<EndPoint, CancellationToken, Task<T>> attempt, CancellationToken cancellationToken)
    {
        var failures = new List<string>();
        foreach (EndPoint endpoint in endpoints)
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(timeout ?? DefaultTimeout);
            try
            {
                return await attempt(endpoint, limit.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or IOException or AuthenticationException or InvalidDataException
                || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                failures.Add($"{endpoint}: {(e is OperationCanceledException ? "timed out" : e.Message)}");
            }
        }

        throw new JoinException(JoinRefusal.Unreachable, failureLine + " (" + string.Join("; ", failures) + ")");
    }

    /// <summary>
    /// Parses <c>HOST:PORT[,HOST:PORT...]</c> (an IPv6 address in brackets) into endpoints; a missing
    /// port is <paramref name="defaultPort"/>. Throws <see cref="FormatException"/> with one line.
    /// </summary>
    public static IReadOnlyList<EndPoint> ParseEndpoints(string text, int defaultPort)
    {
        ArgumentNullException.ThrowIfNull(text);
        var result = new List<EndPoint>();
        foreach (string part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (IPEndPoint.TryParse(part, out IPEndPoint? ip))
            {
                result.Add(ip.Port == 0 && !part.EndsWith(":0", StringComparison.Ordinal) ? new IPEndPoint(ip.Address, defaultPort) : ip);
                continue;
            }

            int colon = part.LastIndexOf(':');
            string host = colon < 0 ? part : part[..colon];
            int port = defaultPort;
            if ((colon >= 0 && (!int.TryParse(part.AsSpan(colon + 1), out port) || port is < 1 or > 65535)) || Uri.CheckHostName(host) != UriHostNameType.Dns)
            {
                throw new FormatException($"'{part}' is not HOST:PORT");
            }

            result.Add(new DnsEndPoint(host, port));
        }

        return result.Count > 0 ? result : throw new FormatException("no endpoint given (HOST:PORT[,HOST:PORT...])");
    }

    private static async Task<NodeCredentials> JoinThroughAsync(EndPoint endpoint, JoinToken token, string nodeName, TimeProvider time, CancellationToken ct)
    {
        SslStream tls = await ConnectAsync(endpoint, "beemesh-join", JoinProtocol.ApplicationProtocol, clientCertificate: null, ct).ConfigureAwait(false);
        await using (tls.ConfigureAwait(false))
        {
            JoinMessage hello = await JoinProtocol.ReadAsync(tls, ct).ConfigureAwait(false);
            if (hello.Type == "error")
            {
                throw Refused(hello);
            }

            if (hello.Type != "hello" || hello.Root is null)
            {
                throw new InvalidDataException("the server did not start with a hello carrying its root");
            }

            using X509Certificate2 root = LoadCertificate(hello.Root);
            string fingerprint = JoinToken.FingerprintOf(root);
            if (fingerprint != token.RootFingerprint)
            {
                throw await RefuseAsync(tls, JoinRefusal.RootMismatch,
                    $"join refused: the trust domain's root fingerprint is {fingerprint}, the token expects {token.RootFingerprint}", ct).ConfigureAwait(false);
            }

            if (SvidValidator.TryGetSpiffeId(root, out SpiffeId? rootId) != SvidValidationResult.Valid || rootId!.Path.Length != 0)
            {
                throw await RefuseAsync(tls, JoinRefusal.ServerIdentity, "join refused: the root carries no trust domain ID", ct).ConfigureAwait(false);
            }

            string trustDomain = rootId.TrustDomain;
            using X509Certificate2 serverCertificate = ServerCertificateOf(tls);
            if (NodeSvidValidator.Validate(serverCertificate, [root], trustDomain, time.GetUtcNow(), out string? identityError) is null)
            {
                throw await RefuseAsync(tls, JoinRefusal.ServerIdentity,
                    $"join refused: the server is not a node of {trustDomain}: {identityError}", ct).ConfigureAwait(false);
            }

            using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            using var svidKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            byte[] caRequest = SigningRequest(caKey, nodeName + " node CA");
            byte[] svidRequest = SigningRequest(svidKey, nodeName);
            byte[] transcript = JoinProof.Transcript(token.Id, serverCertificate.RawData, root.RawData, nodeName, caRequest, svidRequest);
            await JoinProtocol.WriteAsync(tls, new JoinMessage
            {
                Type = "join",
                TokenId = token.Id,
                NodeName = nodeName,
                NodeCaRequest = caRequest,
                NodeSvidRequest = svidRequest,
                Proof = JoinProof.Compute(token.Verifier(), transcript),
            }, ct).ConfigureAwait(false);

            JoinMessage answer = await JoinProtocol.ReadAsync(tls, ct).ConfigureAwait(false);
            if (answer.Type == "error")
            {
                throw Refused(answer);
            }

            if (answer.Type != "joined" || answer.NodeCa is null || answer.NodeSvid is null)
            {
                throw new InvalidDataException("the server answered neither joined nor error");
            }

            return Accept(root, answer, caKey, svidKey, nodeName);
        }
    }

    /// <summary>
    /// Connects to <paramref name="endpoint"/> and completes a TLS 1.3 handshake offering ALPN
    /// <paramref name="applicationProtocol"/> (presenting <paramref name="clientCertificate"/> when given).
    /// The server's certificate is not checked here: the platform knows no root of ours, so the caller
    /// checks it (<see cref="ServerCertificateOf"/>) against the trust domain's root before sending anything.
    /// The returned stream owns the socket.
    /// </summary>
    internal static async Task<SslStream> ConnectAsync(EndPoint endpoint, string targetHost, SslApplicationProtocol applicationProtocol, SslStreamCertificateContext? clientCertificate, CancellationToken ct)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        SslStream? tls = null;
        try
        {
            await socket.ConnectAsync(endpoint, ct).ConfigureAwait(false);
            tls = new SslStream(new NetworkStream(socket, ownsSocket: true));
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = targetHost,
                EnabledSslProtocols = SslProtocols.Tls13,
                ApplicationProtocols = [applicationProtocol],
                ClientCertificateContext = clientCertificate,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = static (_, _, _, _) => true,
            }, ct).ConfigureAwait(false);
            return tls;
        }
        catch
        {
            if (tls is not null)
            {
                await tls.DisposeAsync().ConfigureAwait(false);
            }

            socket.Dispose();
            throw;
        }
    }

    /// <summary>A copy (the caller disposes it) of the certificate the server of <paramref name="tls"/> presented.</summary>
    internal static X509Certificate2 ServerCertificateOf(SslStream tls) => tls.RemoteCertificate is { } remote
        ? X509CertificateLoader.LoadCertificate(remote.GetRawCertData())
        : throw new AuthenticationException("the server presented no certificate");

    internal static NodeCredentials Accept(X509Certificate2 root, JoinMessage answer, ECDsa caKey, ECDsa svidKey, string nodeName)
    {
        using X509Certificate2 nodeCa = LoadCertificate(answer.NodeCa!);
        using X509Certificate2 nodeSvid = LoadCertificate(answer.NodeSvid!);
        if (!SameKey(nodeCa, caKey) || !SameKey(nodeSvid, svidKey))
        {
            throw new InvalidDataException("the server issued certificates for keys this node did not send");
        }

        X509Certificate2 rootCopy = X509CertificateLoader.LoadCertificate(root.RawData);
        X509Certificate2 caWithKey = nodeCa.CopyWithPrivateKey(caKey);
        X509Certificate2 svidWithKey = nodeSvid.CopyWithPrivateKey(svidKey);
        NodeCredentials credentials;
        try
        {
            credentials = NodeCredentialStore.Verify(rootCopy, caWithKey, svidWithKey, "the join answer");
        }
        catch (InvalidOperationException e)
        {
            rootCopy.Dispose();
            caWithKey.Dispose();
            svidWithKey.Dispose();
            throw new InvalidDataException(e.Message, e);
        }

        if (credentials.NodeName != nodeName)
        {
            credentials.Dispose();
            throw new InvalidDataException($"the server issued credentials for node {credentials.NodeName}, not {nodeName}");
        }

        return credentials;
    }

    private static async Task<JoinException> RefuseAsync(Stream stream, JoinRefusal refusal, string line, CancellationToken ct)
    {
        try
        {
            await JoinProtocol.WriteAsync(stream, new JoinMessage { Type = "refuse", Message = line }, ct).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // The server is gone; our line is what matters.
        }

        return new JoinException(refusal, line);
    }

    internal static JoinException Refused(JoinMessage error)
    {
        JoinRefusal refusal = Enum.TryParse(error.Code, out JoinRefusal parsed) && Enum.IsDefined(parsed) ? parsed : JoinRefusal.ServerError;
        string line = error.Message ?? "join refused by the server";
        // Keep the server's line printable and on one line.
        line = new string([.. line.Take(300).Select(c => char.IsControl(c) ? ' ' : c)]);
        return new JoinException(refusal, line);
    }

    internal static byte[] SigningRequest(ECDsa key, string commonName)
    {
        var subject = new X500DistinguishedNameBuilder();
        subject.AddCommonName(commonName);
        return new CertificateRequest(subject.Build(), key, HashAlgorithmName.SHA256).CreateSigningRequest();
    }

    internal static X509Certificate2 LoadCertificate(byte[] der)
    {
        try
        {
            return X509CertificateLoader.LoadCertificate(der);
        }
        catch (CryptographicException e)
        {
            throw new InvalidDataException("the server sent a certificate that does not parse", e);
        }
    }

    private static bool SameKey(X509Certificate2 certificate, ECDsa key)
    {
        using ECDsa? certificateKey = certificate.GetECDsaPublicKey();
        return certificateKey is not null && certificateKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.ExportSubjectPublicKeyInfo());
    }
}
