using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Beemesh.Spiffe.X509;

/// <summary>
/// Builds <see cref="SslStream"/> options for SPIFFE mutual TLS: TLS 1.3 only, the local certificate
/// read from <see cref="X509Source.Current"/> on every handshake (so a rotated SVID is used from the
/// next connection on, with no restart), and the peer checked with <see cref="SvidValidator"/>
/// against the bundle of its trust domain, then with an authorization predicate on its SPIFFE ID.
/// The system trust store and host names play no part (SPIFFE authenticates IDs, not DNS names).
/// </summary>
public static class SpiffeTls
{
    /// <summary>
    /// Server options: requires a client certificate and authorizes it with <paramref name="authorizePeer"/>.
    /// When the current SVID comes with intermediates (an SVID issued by a node CA), the chain sent is
    /// captured here, so create the options per connection, as a handshake callback does.
    /// </summary>
    public static SslServerAuthenticationOptions CreateServerOptions(X509Source source, Func<SpiffeId, bool> authorizePeer)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(authorizePeer);
        var options = new SslServerAuthenticationOptions
        {
            EnabledSslProtocols = SslProtocols.Tls13,
            ClientCertificateRequired = true,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, chain, _) => ValidatePeer(source, certificate, chain, authorizePeer),
        };
        if (ChainContext(source) is SslStreamCertificateContext context)
        {
            options.ServerCertificateContext = context;
        }
        else
        {
            options.ServerCertificateSelectionCallback = (_, _) => source.Current.DefaultSvid.Certificate;
        }

        return options;
    }

    /// <summary>
    /// The leaf plus intermediates to send for the current SVID, or null when it has none. The bundle
    /// holds roots only, so a peer can build leaf → node CA → root only if the node CA is sent.
    /// </summary>
    private static SslStreamCertificateContext? ChainContext(X509Source source)
    {
        if (!source.HasContext)
        {
            return null;
        }

        X509Svid svid = source.Current.DefaultSvid;
        return svid.Intermediates.Count == 0
            ? null
            : SslStreamCertificateContext.Create(svid.Certificate, svid.Intermediates, offline: true);
    }

    /// <summary>
    /// Client options: presents the current SVID and accepts only a server whose SVID validates and
    /// satisfies <paramref name="authorizePeer"/>. <paramref name="targetHost"/> is only sent as SNI.
    /// When the current SVID comes with intermediates, the chain sent is captured here (create the
    /// options per SVID, as the tunnel client does per generation).
    /// </summary>
    public static SslClientAuthenticationOptions CreateClientOptions(X509Source source, Func<SpiffeId, bool> authorizePeer, string targetHost = "spiffe")
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(authorizePeer);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = targetHost,
            EnabledSslProtocols = SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, chain, _) => ValidatePeer(source, certificate, chain, authorizePeer),
        };
        if (ChainContext(source) is SslStreamCertificateContext context)
        {
            options.ClientCertificateContext = context;
        }
        else
        {
            options.LocalCertificateSelectionCallback = (_, _, _, _, _) => source.Current.DefaultSvid.Certificate;
        }

        return options;
    }

    /// <summary>
    /// The SPIFFE checks used by both sides: <paramref name="certificate"/> must be a valid SVID of a
    /// trust domain the source has a bundle for, at the source's current time, and be authorized.
    /// The platform's own chain verdict is ignored on purpose: it used the system roots.
    /// </summary>
    public static bool ValidatePeer(X509Source source, X509Certificate? certificate, X509Chain? chain, Func<SpiffeId, bool> authorizePeer)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(authorizePeer);
        if (certificate is not X509Certificate2 leaf || !source.HasContext)
        {
            return false;
        }

        if (SvidValidator.TryGetSpiffeId(leaf, out SpiffeId? claimed) != SvidValidationResult.Valid)
        {
            return false;
        }

        X509Context context = source.Current;
        SvidValidationResult result = SvidValidator.Validate(
            leaf,
            chain?.ChainPolicy.ExtraStore,
            context.BundleFor(claimed!.TrustDomain),
            claimed.TrustDomain,
            source.TimeProvider.GetUtcNow(),
            out SpiffeId? id);
        if (result != SvidValidationResult.Valid || !authorizePeer(id!))
        {
            return false;
        }

        if (chain is { ChainPolicy.ExtraStore.Count: > 0 })
        {
            // Copies: the handshake's chain and its store go away after this callback.
            X509Certificate2Collection sent = [];
            foreach (X509Certificate2 other in chain.ChainPolicy.ExtraStore)
            {
                if (!other.Equals(leaf))
                {
                    sent.Add(X509CertificateLoader.LoadCertificate(other.RawData));
                }
            }

            if (sent.Count > 0)
            {
                PeerIntermediateTable.AddOrUpdate(leaf, sent);
            }
        }

        return true;
    }

    /// <summary>
    /// The certificates other than the leaf that the peer sent in the handshake in which
    /// <paramref name="peerCertificate"/> (the connection's remote certificate) was accepted, or null
    /// when it sent none. Later checks of a live connection (continuous authorization) need them to
    /// rebuild a path leaf → node CA → root against the bundle, which holds roots only.
    /// </summary>
    public static X509Certificate2Collection? GetPeerIntermediates(X509Certificate2 peerCertificate)
    {
        ArgumentNullException.ThrowIfNull(peerCertificate);
        return PeerIntermediateTable.TryGetValue(peerCertificate, out X509Certificate2Collection? sent) ? sent : null;
    }

    // Keyed by the remote certificate object, so an entry lives exactly as long as the connection's certificate.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<X509Certificate2, X509Certificate2Collection> PeerIntermediateTable = [];

    /// <summary>The authenticated peer's SPIFFE ID after a successful handshake, or null.</summary>
    public static SpiffeId? GetPeerId(SslStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return stream.RemoteCertificate is X509Certificate2 certificate
            && SvidValidator.TryGetSpiffeId(certificate, out SpiffeId? id) == SvidValidationResult.Valid
            ? id
            : null;
    }
}
