using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Authority;

namespace Beemesh.Identity.Join;

/// <summary>
/// A joined node's side of node certificate renewal (<see cref="JoinProtocol"/>, ALPN
/// <c>beemesh-renew/1</c>). For each endpoint in turn until one renews: TCP, TLS 1.3 presenting the
/// node's current node SVID as client certificate; the server must present a node SVID the root signed.
/// New node CA and node SVID keys are generated here (they never leave the node) and sent as two
/// PKCS#10 requests; the answer must be certificates for those keys and this node's name, signed by the
/// same root. Only the node holding the root key speaks this protocol: any other node refuses the ALPN
/// and the next endpoint is tried. A refusal by the root holder (revoked, name mismatch, expired) is
/// final and raised as a <see cref="JoinException"/> with one line.
/// </summary>
public static class NodeRenewalClient
{
    /// <summary>Default bound on one attempt (connect, handshake and exchange).</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Renews the node certificates of <paramref name="current"/> through the first endpoint of
    /// <paramref name="endpoints"/> that serves renewals, and returns the new credentials.
    /// </summary>
    public static async Task<NodeCredentials> RenewAsync(
        IReadOnlyList<EndPoint> endpoints, NodeCredentials current, TimeProvider? timeProvider = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(current);
        if (endpoints.Count == 0)
        {
            throw new JoinException(JoinRefusal.Unreachable, "renewal failed: no node to renew through (pass --join with the first node's address)");
        }

        SslStreamCertificateContext context = SslStreamCertificateContext.Create(current.NodeSvid, additionalCertificates: null, offline: true);
        TimeProvider time = timeProvider ?? TimeProvider.System;
        return await JoinClient.FirstAnswerAsync(endpoints, timeout, "renewal failed: no node holding the root answered",
            (endpoint, ct) => RenewThroughAsync(endpoint, current, context, time, ct), cancellationToken).ConfigureAwait(false);
    }

    private static async Task<NodeCredentials> RenewThroughAsync(EndPoint endpoint, NodeCredentials current, SslStreamCertificateContext context, TimeProvider time, CancellationToken ct)
    {
        SslStream tls = await JoinClient.ConnectAsync(endpoint, "beemesh-renew", JoinProtocol.RenewalProtocol, context, ct).ConfigureAwait(false);
        await using (tls.ConfigureAwait(false))
        {
            if (tls.NegotiatedApplicationProtocol != JoinProtocol.RenewalProtocol)
            {
                throw new AuthenticationException("the node does not serve renewals (it does not hold the root key)");
            }

            using X509Certificate2 serverCertificate = JoinClient.ServerCertificateOf(tls);
            if (NodeSvidValidator.Validate(serverCertificate, [current.Root], current.TrustDomain, time.GetUtcNow(), out string? identityError) is null)
            {
                throw new AuthenticationException($"the server is not a node of {current.TrustDomain}: {identityError}");
            }

            using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            using var svidKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            await JoinProtocol.WriteAsync(tls, new JoinMessage
            {
                Type = "renew",
                NodeName = current.NodeName,
                NodeCaRequest = JoinClient.SigningRequest(caKey, current.NodeName + " node CA"),
                NodeSvidRequest = JoinClient.SigningRequest(svidKey, current.NodeName),
            }, ct).ConfigureAwait(false);

            JoinMessage answer = await JoinProtocol.ReadAsync(tls, ct).ConfigureAwait(false);
            if (answer.Type == "error")
            {
                throw JoinClient.Refused(answer);
            }

            if (answer.Type != "renewed" || answer.NodeCa is null || answer.NodeSvid is null)
            {
                throw new InvalidDataException("the server answered neither renewed nor error");
            }

            return JoinClient.Accept(current.Root, answer, caKey, svidKey, current.NodeName);
        }
    }
}
