using System.Formats.Asn1;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Spiffe.Jwt;
using Beemesh.Spiffe.X509;
using Beemesh.WorkloadApi.Protocol;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Beemesh.Spiffe.WorkloadApi;

/// <summary>
/// Client of the SPIFFE Workload API (gRPC over HTTP/2 on a unix socket). Works against SPIRE's
/// agent as well as Beemesh's embedded server. Every call carries the <c>workload.spiffe.io: true</c>
/// header the standard requires (servers answer InvalidArgument without it). gRPC failures surface as
/// <see cref="RpcException"/>: PermissionDenied means the caller has no identity (yet) and is worth
/// retrying; InvalidArgument is a client bug and is not.
/// </summary>
public sealed class WorkloadApiClient : IDisposable
{
    /// <summary>The metadata key the Workload API standard requires on every call.</summary>
    public const string SecurityHeader = "workload.spiffe.io";

    private readonly GrpcChannel _channel;
    private readonly SpiffeWorkloadAPI.SpiffeWorkloadAPIClient _client;

    /// <summary>Creates a client for the Workload API listening on the unix socket <paramref name="socketPath"/>.</summary>
    public WorkloadApiClient(string socketPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        SocketPath = socketPath;
        _channel = CreateChannel(socketPath);
        _client = new SpiffeWorkloadAPI.SpiffeWorkloadAPIClient(_channel);
    }

    /// <summary>The unix socket path this client dials.</summary>
    public string SocketPath { get; }

    /// <summary>
    /// Creates a client from <c>SPIFFE_ENDPOINT_SOCKET</c>; throws <see cref="InvalidOperationException"/>
    /// when the variable is unset or is not a <c>unix:</c> address.
    /// </summary>
    public static WorkloadApiClient FromEnvironment() =>
        new(WorkloadApiEndpoint.FromEnvironment()
            ?? throw new InvalidOperationException($"{WorkloadApiEndpoint.EnvironmentVariable} is unset or not a unix:/path address."));

    /// <summary>
    /// Opens a gRPC channel over HTTP/2 (prior knowledge, no TLS) to a unix socket. The host in the
    /// address is never resolved; the connect callback dials the socket instead.
    /// </summary>
    public static GrpcChannel CreateChannel(string socketPath)
    {
        var endpoint = new UnixDomainSocketEndPoint(socketPath);
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
    }

    /// <summary>
    /// Streams the workload's X.509 state (FetchX509SVID). Each element is the full state; the stream
    /// ends when the server closes it or <paramref name="cancellationToken"/> fires.
    /// </summary>
    public async IAsyncEnumerable<X509Context> WatchX509ContextAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using AsyncServerStreamingCall<X509SVIDResponse> call = _client.FetchX509SVID(new X509SVIDRequest(), Options(cancellationToken));
        while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            yield return ToContext(call.ResponseStream.Current);
        }
    }

    /// <summary>Returns the first message of FetchX509SVID: the workload's current X.509 state.</summary>
    public async Task<X509Context> FetchX509ContextAsync(CancellationToken cancellationToken = default)
    {
        await foreach (X509Context context in WatchX509ContextAsync(cancellationToken).ConfigureAwait(false))
        {
            return context;
        }

        throw new RpcException(new Status(StatusCode.Unavailable, "The Workload API closed the stream without an answer."));
    }

    /// <summary>Streams X.509 bundles (FetchX509Bundles), keyed by trust domain name.</summary>
    public async IAsyncEnumerable<IReadOnlyDictionary<string, X509Certificate2Collection>> WatchX509BundlesAsync(
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using AsyncServerStreamingCall<X509BundlesResponse> call = _client.FetchX509Bundles(new X509BundlesRequest(), Options(cancellationToken));
        while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            var bundles = new Dictionary<string, X509Certificate2Collection>(StringComparer.Ordinal);
            foreach (KeyValuePair<string, ByteString> pair in call.ResponseStream.Current.Bundles)
            {
                bundles[TrustDomainName(pair.Key)] = ParseCertificates(pair.Value.Span);
            }

            yield return bundles;
        }
    }

    /// <summary>Fetches JWT-SVIDs for <paramref name="audience"/>, optionally only for <paramref name="spiffeId"/>.</summary>
    public async Task<IReadOnlyList<JwtSvid>> FetchJwtSvidsAsync(
        IEnumerable<string> audience, string? spiffeId = null, CancellationToken cancellationToken = default)
    {
        var request = new JWTSVIDRequest { SpiffeId = spiffeId ?? string.Empty };
        request.Audience.AddRange(audience);
        JWTSVIDResponse response = await _client.FetchJWTSVIDAsync(request, Options(cancellationToken)).ConfigureAwait(false);
        var svids = new List<JwtSvid>(response.Svids.Count);
        foreach (JWTSVID svid in response.Svids)
        {
            svids.Add(new JwtSvid(SpiffeId.Parse(svid.SpiffeId), svid.Svid, svid.Hint));
        }

        return svids;
    }

    /// <summary>Returns the first message of FetchJWTBundles: JWT bundles keyed by trust domain name.</summary>
    public async Task<IReadOnlyDictionary<string, JwtBundle>> FetchJwtBundlesAsync(CancellationToken cancellationToken = default)
    {
        using AsyncServerStreamingCall<JWTBundlesResponse> call = _client.FetchJWTBundles(new JWTBundlesRequest(), Options(cancellationToken));
        if (!await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "The Workload API closed the stream without an answer."));
        }

        var bundles = new Dictionary<string, JwtBundle>(StringComparer.Ordinal);
        foreach (KeyValuePair<string, ByteString> pair in call.ResponseStream.Current.Bundles)
        {
            if (JwtBundle.TryParse(pair.Value.Span, out JwtBundle? bundle))
            {
                bundles[TrustDomainName(pair.Key)] = bundle!;
            }
        }

        return bundles;
    }

    /// <summary>
    /// Asks the server to validate <paramref name="token"/> for <paramref name="audience"/>; returns the
    /// subject and the claims as JSON. An invalid token surfaces as an <see cref="RpcException"/> (InvalidArgument).
    /// </summary>
    public async Task<(SpiffeId Id, string ClaimsJson)> ValidateJwtSvidAsync(
        string token, string audience, CancellationToken cancellationToken = default)
    {
        var request = new ValidateJWTSVIDRequest { Svid = token, Audience = audience };
        ValidateJWTSVIDResponse response = await _client.ValidateJWTSVIDAsync(request, Options(cancellationToken)).ConfigureAwait(false);
        return (SpiffeId.Parse(response.SpiffeId), response.Claims?.ToString() ?? "{}");
    }

    /// <inheritdoc />
    public void Dispose() => _channel.Dispose();

    private static CallOptions Options(CancellationToken cancellationToken) =>
        new(headers: new Metadata { { SecurityHeader, "true" } }, cancellationToken: cancellationToken);

    internal static X509Context ToContext(X509SVIDResponse response)
    {
        var svids = new List<X509Svid>(response.Svids.Count);
        var bundles = new Dictionary<string, X509Certificate2Collection>(StringComparer.Ordinal);
        foreach (X509SVID svid in response.Svids)
        {
            SpiffeId id = SpiffeId.Parse(svid.SpiffeId);
            X509Certificate2Collection chain = ParseCertificates(svid.X509Svid.Span);
            if (chain.Count == 0)
            {
                throw new RpcException(new Status(StatusCode.DataLoss, $"SVID for {id} carries no certificate."));
            }

            X509Certificate2 leaf = WithPrivateKey(chain[0], svid.X509SvidKey.Span);
            chain.RemoveAt(0);
            svids.Add(new X509Svid(id, leaf, chain, svid.Hint));
            bundles.TryAdd(id.TrustDomain, ParseCertificates(svid.Bundle.Span));
        }

        foreach (KeyValuePair<string, ByteString> pair in response.FederatedBundles)
        {
            bundles.TryAdd(TrustDomainName(pair.Key), ParseCertificates(pair.Value.Span));
        }

        if (svids.Count == 0)
        {
            throw new RpcException(new Status(StatusCode.DataLoss, "The Workload API sent no SVID."));
        }

        return new X509Context(svids, bundles);
    }

    /// <summary>Splits concatenated ASN.1 DER certificates, the Workload API's encoding of chains and bundles.</summary>
    public static X509Certificate2Collection ParseCertificates(ReadOnlySpan<byte> der)
    {
        var certificates = new X509Certificate2Collection();
        while (!der.IsEmpty)
        {
            AsnDecoder.ReadEncodedValue(der, AsnEncodingRules.DER, out _, out _, out int consumed);
            certificates.Add(X509CertificateLoader.LoadCertificate(der[..consumed]));
            der = der[consumed..];
        }

        return certificates;
    }

    private static X509Certificate2 WithPrivateKey(X509Certificate2 certificate, ReadOnlySpan<byte> pkcs8)
    {
        if (certificate.GetECDsaPublicKey() is { } ecPublic)
        {
            ecPublic.Dispose();
            using ECDsa key = ECDsa.Create();
            key.ImportPkcs8PrivateKey(pkcs8, out _);
            return certificate.CopyWithPrivateKey(key);
        }

        using RSA rsa = RSA.Create();
        rsa.ImportPkcs8PrivateKey(pkcs8, out _);
        return certificate.CopyWithPrivateKey(rsa);
    }

    // Bundle maps are keyed by the trust domain's SPIFFE ID (spiffe://example.org); tolerate bare names.
    private static string TrustDomainName(string key) =>
        key.StartsWith("spiffe://", StringComparison.Ordinal) ? key["spiffe://".Length..] : key;
}
