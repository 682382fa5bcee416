using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
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
    // NoResumption: sessions are never resumed, on either side. A resumed TLS 1.3 session brings the
    // peer's leaf without the intermediates it sent in the full handshake, so an SVID issued by a node
    // CA (every workload of a joined node) no longer chains to the bundle's root and the peer is
    // refused: each reconnection after the first (a pooled tunnel, a Raft member, a replica link)
    // would fail. Each connection pays a full handshake instead, once per connection, not per request.

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
            CertificateChainPolicy = PlatformChainPolicy,
            RemoteCertificateValidationCallback = (_, certificate, chain, _) => ValidatePeer(source, certificate, chain, authorizePeer),
            AllowTlsResume = false, // see NoResumption
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
        return svid.Intermediates.Count == 0 ? null : CertificateContextFor(svid);
    }

    /// <summary>
    /// The certificate context (leaf plus intermediates) of <paramref name="svid"/>, built on first
    /// use and then shared by every handshake with that SVID: building one walks a certificate chain,
    /// and OpenSSL's server state (SSL_CTX) is cached per context, so one context per connection
    /// would pay both on every handshake. A rotated SVID is a new object and gets a new context; the
    /// old one goes when nothing refers to the old SVID any more.
    /// </summary>
    public static SslStreamCertificateContext CertificateContextFor(X509Svid svid)
    {
        ArgumentNullException.ThrowIfNull(svid);
        return CertificateContexts.GetValue(svid, static s => SslStreamCertificateContext.Create(s.Certificate, s.Intermediates, offline: true));
    }

    // Keyed by the SVID object (reference identity): an entry lives as long as its SVID.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<X509Svid, SslStreamCertificateContext> CertificateContexts = [];

    /// <summary>
    /// The policy of the chain the platform builds in every handshake before our callback runs. Its
    /// verdict is ignored (<see cref="ValidatePeer"/> decides with the SPIFFE bundle), so it only has
    /// to stay offline: no revocation lookup, no download of missing issuers named by an AIA
    /// extension, and no system root as a trust anchor (custom trust with an empty store). One
    /// object for every handshake: the handshake copies it, so it is never changed.
    /// </summary>
    private static readonly X509ChainPolicy PlatformChainPolicy = new()
    {
        RevocationMode = X509RevocationMode.NoCheck,
        DisableCertificateDownloads = true,
        TrustMode = X509ChainTrustMode.CustomRootTrust,
    };

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
            CertificateChainPolicy = PlatformChainPolicy,
            RemoteCertificateValidationCallback = (_, certificate, chain, _) => ValidatePeer(source, certificate, chain, authorizePeer),
            AllowTlsResume = false, // see NoResumption
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

    private static Task<int>? s_storesPreload;

    /// <summary>
    /// Starts <see cref="LoadPlatformCertificateStores"/> in the background once per process and
    /// returns that one load: `beemesh run` starts it while the guest is set up, and the sidecar it
    /// starts (or `beemesh sidecar` alone) asks again without reading the stores a second time.
    /// </summary>
    public static Task<int> PreloadPlatformCertificateStores()
    {
        Task<int>? started = Volatile.Read(ref s_storesPreload);
        if (started is not null)
        {
            return started;
        }

        var load = new Task<int>(LoadPlatformCertificateStores);
        started = Interlocked.CompareExchange(ref s_storesPreload, load, null);
        if (started is not null)
        {
            return started;
        }

        load.Start(TaskScheduler.Default);
        return load;
    }

    /// <summary>
    /// Loads the machine's certificate stores into the platform's process-wide cache and returns the
    /// number of root certificates in them. On Linux every chain build, ours included, consults
    /// that cache although SPIFFE trusts only its bundles, and the first one in a process reads and
    /// parses every file under the system certificate directory (hundreds of milliseconds on a busy
    /// machine). Calling this at start-up, in the background, takes that off the first handshake.
    /// It does nothing for the reload the platform does inside a chain build every five minutes
    /// after that: <see cref="PlatformTrustStore.UseEmptyStore"/> is what keeps the store out of
    /// the handshakes of a process. Returns 0 when the stores cannot be read (or are empty).
    /// </summary>
    public static int LoadPlatformCertificateStores()
    {
        try
        {
            using var roots = new X509Store(StoreName.Root, StoreLocation.LocalMachine);
            roots.Open(OpenFlags.ReadOnly | OpenFlags.OpenExistingOnly);
            X509Certificate2Collection certificates = roots.Certificates;
            int count = certificates.Count;
            foreach (X509Certificate2 certificate in certificates)
            {
                certificate.Dispose();
            }

            return count;
        }
        catch (CryptographicException)
        {
            return 0;
        }
    }

    /// <summary>
    /// Does once, now, what the first tunnel handshake of the process would otherwise do while a
    /// caller waits: loads the TLS library and its state, builds the certificate context of the
    /// current SVID, builds and checks certificate chains (which loads the certificate stores the
    /// platform consults), and runs one full mutual-TLS handshake of this workload with itself
    /// over a loopback connection, with the options real connections use and the peer checked by
    /// <see cref="ValidatePeer"/> as <paramref name="expectedPeer"/> (normally the workload's own
    /// ID). Returns true when the handshake succeeded; false when there is no SVID yet or it
    /// failed (nothing is changed either way: real handshakes check everything again).
    /// </summary>
    public static async Task<bool> WarmUpAsync(X509Source source, SpiffeId expectedPeer, IList<SslApplicationProtocol>? applicationProtocols = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(expectedPeer);
        if (!source.HasContext)
        {
            return false;
        }

        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Task<Socket> accepting = listener.AcceptAsync(cancellationToken).AsTask();
        await client.ConnectAsync(listener.LocalEndPoint!, cancellationToken).ConfigureAwait(false);
        using Socket accepted = await accepting.ConfigureAwait(false);
        if (!Equals(accepted.RemoteEndPoint, client.LocalEndPoint))
        {
            // Another local process connected first: do not talk TLS with it.
            return false;
        }

        SslServerAuthenticationOptions serverOptions = CreateServerOptions(source, id => id == expectedPeer);
        SslClientAuthenticationOptions clientOptions = CreateClientOptions(source, id => id == expectedPeer);
        if (applicationProtocols is not null)
        {
            serverOptions.ApplicationProtocols = [.. applicationProtocols];
            clientOptions.ApplicationProtocols = [.. applicationProtocols];
        }

        await using var serverTls = new SslStream(new NetworkStream(accepted, ownsSocket: false));
        await using var clientTls = new SslStream(new NetworkStream(client, ownsSocket: false));
        Task server = serverTls.AuthenticateAsServerAsync(serverOptions, cancellationToken);
        Task clientSide = clientTls.AuthenticateAsClientAsync(clientOptions, cancellationToken);
        try
        {
            await clientSide.ConfigureAwait(false);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            // Unblock the server side before it is awaited below.
            client.Close(0);
        }

        try
        {
            await server.ConfigureAwait(false);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            return false;
        }

        return clientSide.IsCompletedSuccessfully && serverTls.IsMutuallyAuthenticated;
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
