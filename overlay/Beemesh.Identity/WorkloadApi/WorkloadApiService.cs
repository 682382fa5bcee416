using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Attestation;
using Beemesh.Identity.Authority;
using Beemesh.Spiffe;
using Beemesh.Spiffe.Jwt;
using Beemesh.Spiffe.Processes;
using Beemesh.WorkloadApi.Protocol;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace Beemesh.Identity.WorkloadApi;

/// <summary>
/// The SPIFFE Workload API methods. Every call first checks the <c>workload.spiffe.io: true</c>
/// header (missing → InvalidArgument, as the standard requires, so clients do not retry) and
/// attests the caller bound to the connection (no identity, or the process that opened the
/// connection has exited → PermissionDenied, which clients retry); streams re-attest before every message.
/// Streams send the full state in every message: a new message when the SVID reaches its rotation
/// time or a bundle changes.
/// </summary>
internal sealed class WorkloadApiService(
    CertificateAuthority authority,
    IWorkloadAttestor attestor,
    WorkloadApiServerOptions options,
    TimeProvider timeProvider,
    Random random,
    CancellationToken shutdown) : SpiffeWorkloadAPI.SpiffeWorkloadAPIBase
{
    private readonly Lock _randomGate = new();

    public override async Task FetchX509SVID(X509SVIDRequest request, IServerStreamWriter<X509SVIDResponse> responseStream, ServerCallContext context)
    {
        SpiffeId id = Attest(context, out CallerProcess caller);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, shutdown);
        CancellationToken cancellationToken = linked.Token;
        using var changed = new SemaphoreSlim(0, 1);
        EventHandler onChange = (_, _) => Signal(changed);
        authority.BundlesChanged += onChange;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                (X509Certificate2 certificate, X509Certificate2Collection chain) = authority.IssueX509SvidChain(
                    id.ToString(), new CertificateRequest("CN=unused", key, HashAlgorithmName.SHA256).PublicKey, options.X509SvidTtl);
                using X509Certificate2 owned = certificate;
                byte[] pkcs8 = key.ExportPkcs8PrivateKey();
                DateTimeOffset rotateAt;
                lock (_randomGate)
                {
                    // Half of the lifetime asked for, not of the backdated validity: with short TTLs the
                    // 10 s backdate would otherwise pull the rotation far ahead of half-life.
                    DateTimeOffset notBefore = new(certificate.NotBefore.ToUniversalTime());
                    DateTimeOffset notAfter = new(certificate.NotAfter.ToUniversalTime());
                    DateTimeOffset issued = notAfter - options.X509SvidTtl;
                    rotateAt = SvidRotation.RotationTime(issued > notBefore ? issued : notBefore, notAfter, random);
                }

                do
                {
                    // Every message re-attests: the caller may have exited, or lost its registration.
                    if (IdentityOf(caller) != id)
                    {
                        throw new RpcException(new Status(StatusCode.PermissionDenied, "the caller's identity changed"));
                    }

                    await responseStream.WriteAsync(X509Response(id, certificate, chain, pkcs8), cancellationToken).ConfigureAwait(false);
                }
                while (await WaitForBundleChangeAsync(rotateAt, changed, cancellationToken).ConfigureAwait(false));
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The caller went away.
        }
        finally
        {
            authority.BundlesChanged -= onChange;
        }
    }

    public override async Task FetchX509Bundles(X509BundlesRequest request, IServerStreamWriter<X509BundlesResponse> responseStream, ServerCallContext context)
    {
        Attest(context, out CallerProcess caller);
        await StreamUntilCancelledAsync(
            caller,
            () =>
            {
                var response = new X509BundlesResponse();
                response.Bundles.Add(SpiffeId.FromParts(authority.TrustDomain, string.Empty).ToString(), Concatenate(authority.Bundle));
                AddFederated(response.Bundles);
                return response;
            },
            responseStream,
            context.CancellationToken).ConfigureAwait(false);
    }

    public override Task<JWTSVIDResponse> FetchJWTSVID(JWTSVIDRequest request, ServerCallContext context)
    {
        SpiffeId id = Attest(context);
        if (request.Audience.Count == 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "audience must be specified"));
        }

        // Every audience goes into the token, and every validation walks them all: a request with
        // thousands of (empty) audiences would cost each of its validations that much.
        if (request.Audience.Count > options.MaxJwtAudiences)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"at most {options.MaxJwtAudiences} audiences may be requested, not {request.Audience.Count}"));
        }

        foreach (string audience in request.Audience)
        {
            if (audience.Length is 0 || audience.Length > WorkloadApiServerOptions.MaxJwtAudienceLength)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"an audience must be 1 to {WorkloadApiServerOptions.MaxJwtAudienceLength} characters long"));
            }
        }

        if (request.SpiffeId.Length != 0 && request.SpiffeId != id.ToString())
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, "caller is not entitled to the requested SPIFFE ID"));
        }

        var response = new JWTSVIDResponse();
        response.Svids.Add(new JWTSVID
        {
            SpiffeId = id.ToString(),
            Svid = authority.IssueJwtSvid(id.ToString(), [.. request.Audience], options.JwtSvidTtl),
        });
        return Task.FromResult(response);
    }

    public override async Task FetchJWTBundles(JWTBundlesRequest request, IServerStreamWriter<JWTBundlesResponse> responseStream, ServerCallContext context)
    {
        Attest(context, out CallerProcess caller);
        await StreamUntilCancelledAsync(
            caller,
            () =>
            {
                var response = new JWTBundlesResponse();
                response.Bundles.Add(SpiffeId.FromParts(authority.TrustDomain, string.Empty).ToString(), ByteString.CopyFrom(authority.JwtBundle.ToJwks()));
                return response;
            },
            responseStream,
            context.CancellationToken).ConfigureAwait(false);
    }

    public override Task<ValidateJWTSVIDResponse> ValidateJWTSVID(ValidateJWTSVIDRequest request, ServerCallContext context)
    {
        Attest(context);
        if (request.Audience.Length == 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "audience must be specified"));
        }

        if (request.Svid.Length == 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "svid must be specified"));
        }

        JwtSvidValidationResult result = JwtSvidValidator.Validate(
            request.Svid, request.Audience, authority.JwtBundle, authority.TrustDomain, timeProvider.GetUtcNow(), out SpiffeId? subject, out string? claimsJson);
        if (result != JwtSvidValidationResult.Valid)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"invalid JWT-SVID: {result}"));
        }

        return Task.FromResult(new ValidateJWTSVIDResponse
        {
            SpiffeId = subject!.ToString(),
            Claims = ClaimsStruct(claimsJson!),
        });
    }

    /// <summary>
    /// The claims of a validated JWT-SVID as the response's <c>claims</c> Struct; InvalidArgument when
    /// they hold what a Struct cannot (a number beyond a double's range).
    /// </summary>
    internal static Struct ClaimsStruct(string claimsJson)
    {
        try
        {
            return JsonParser.Default.Parse<Struct>(claimsJson);
        }
        catch (Exception e) when (e is InvalidJsonException or InvalidProtocolBufferException)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "invalid JWT-SVID: its claims cannot be returned as a Struct: " + e.Message));
        }
    }

    private SpiffeId Attest(ServerCallContext context) => Attest(context, out _);

    // The caller is the process bound when the connection was accepted; it must still run (same
    // pidfd, same start time), or the pid may already belong to someone else.
    private SpiffeId Attest(ServerCallContext context, out CallerProcess caller)
    {
        if (context.RequestHeaders.Get(Spiffe.WorkloadApi.WorkloadApiClient.SecurityHeader)?.Value != "true")
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "security header missing from request"));
        }

        HttpContext http = context.GetHttpContext();
        caller = http.Features.Get<PeerCredentialsFeature>()?.Caller
            ?? throw new RpcException(new Status(StatusCode.PermissionDenied, "could not read the caller's credentials"));
        return IdentityOf(caller);
    }

    private SpiffeId IdentityOf(CallerProcess caller)
    {
        if (!caller.IsAlive)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, "the process that opened this connection has exited; no identity issued"));
        }

        SpiffeId? id = attestor.Attest(new PeerCredentials(caller.ProcessId, caller.UserId, caller.GroupId));
        // Checked again after the walk: the process may have exited while its ancestry was read.
        return id is not null && caller.IsAlive
            ? id
            : throw new RpcException(new Status(StatusCode.PermissionDenied, "no identity issued"));
    }

    private async Task StreamUntilCancelledAsync<T>(CallerProcess caller, Func<T> build, IServerStreamWriter<T> responseStream, CancellationToken callCancelled)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(callCancelled, shutdown);
        CancellationToken cancellationToken = linked.Token;
        using var changed = new SemaphoreSlim(0, 1);
        EventHandler onChange = (_, _) => Signal(changed);
        authority.BundlesChanged += onChange;
        try
        {
            do
            {
                IdentityOf(caller);
                await responseStream.WriteAsync(build(), cancellationToken).ConfigureAwait(false);
            }
            while (await WaitForBundleChangeAsync(DateTimeOffset.MaxValue, changed, cancellationToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            authority.BundlesChanged -= onChange;
        }
    }

    // True when a bundle changed before the deadline (resend the same SVID with the new bundles),
    // false when the deadline passed (issue a new SVID). The deadline is absolute, so time that
    // passed while the previous message was being written counts.
    private async Task<bool> WaitForBundleChangeAsync(DateTimeOffset deadline, SemaphoreSlim changed, CancellationToken cancellationToken)
    {
        TimeSpan delay = deadline == DateTimeOffset.MaxValue ? Timeout.InfiniteTimeSpan : deadline - timeProvider.GetUtcNow();
        if (delay != Timeout.InfiniteTimeSpan && delay <= TimeSpan.Zero)
        {
            return false;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task timer = Task.Delay(delay, timeProvider, stop.Token);
        Task<bool> signal = changed.WaitAsync(Timeout.Infinite, stop.Token);
        Task first = await Task.WhenAny(timer, signal).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return first == signal && signal.IsCompletedSuccessfully;
    }

    private static void Signal(SemaphoreSlim changed)
    {
        try
        {
            changed.Release();
        }
        catch (SemaphoreFullException)
        {
            // A change is already pending; the next message carries the full state anyway.
        }
        catch (ObjectDisposedException)
        {
            // The stream ended while the event was being raised.
        }
    }

    private X509SVIDResponse X509Response(SpiffeId id, X509Certificate2 certificate, X509Certificate2Collection chain, byte[] pkcs8)
    {
        var response = new X509SVIDResponse();
        response.Svids.Add(new X509SVID
        {
            SpiffeId = id.ToString(),
            X509Svid = Concatenate([certificate, .. chain]), // leaf first, then the node CA (if any) that signed it
            X509SvidKey = ByteString.CopyFrom(pkcs8),
            Bundle = Concatenate(authority.Bundle),
        });
        AddFederated(response.FederatedBundles);
        return response;
    }

    private void AddFederated(Google.Protobuf.Collections.MapField<string, ByteString> map)
    {
        foreach (KeyValuePair<string, X509Certificate2Collection> pair in authority.FederatedBundles)
        {
            map[SpiffeId.FromParts(pair.Key, string.Empty).ToString()] = Concatenate(pair.Value);
        }
    }

    private static ByteString Concatenate(X509Certificate2Collection certificates)
    {
        using var buffer = new MemoryStream();
        foreach (X509Certificate2 certificate in certificates)
        {
            buffer.Write(certificate.RawData);
        }

        return ByteString.CopyFrom(buffer.GetBuffer(), 0, (int)buffer.Length);
    }
}
