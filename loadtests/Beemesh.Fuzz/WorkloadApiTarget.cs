using System.Buffers.Text;
using System.Security.Cryptography;
using Beemesh.Identity.Attestation;
using Beemesh.Identity.Authority;
using Beemesh.Identity.WorkloadApi;
using Beemesh.Spiffe;
using Beemesh.Spiffe.Jwt;
using Beemesh.Spiffe.Processes;
using Beemesh.WorkloadApi.Protocol;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Fuzz;

/// <summary>
/// The Workload API server's request decoding and handling, without a socket. The first byte picks
/// what the rest is: (mode &amp; 7) 0 a ValidateJWTSVIDRequest, 1 a JWTSVIDRequest, 2 a JWTBundlesRequest,
/// 3 an X509BundlesRequest, 4 an X509SVIDRequest (each a protobuf message decoded as gRPC decodes it and
/// passed to the service, streams ended after their first message); 5 a JWKS document
/// (<see cref="JwtBundle.TryParse"/>, what a workload parses from the bundle stream); 6 "header JSON NUL
/// claims JSON NUL audience", which the target signs with a key of its own so the validator's checks
/// past the signature run on fuzzed claims (then the claims go through the same JSON-to-Struct step
/// ValidateJWTSVID answers with). Bit 0x80 leaves out the <c>workload.spiffe.io</c> header, bit 0x40 makes
/// the caller unattested. A request may end only in a status the API documents (InvalidArgument,
/// PermissionDenied) or, for bytes that are not the message, the decoding error gRPC reports.
/// </summary>
public sealed class WorkloadApiTarget : FuzzTarget, IDisposable
{
    /// <summary>The key mode 6 signs with (P-256, fixed so seeds carry its key id).</summary>
    public const string SigningKeyPem = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUWNSoLUEBKwMlTZb
        /pFTApV/xPIphcrDfeXARSX5RGKhRANCAAQq+LBtMOWR5sLCKKrtQAtlOjQjajW2
        6Yt+CGkedklhnpKQBUrJHKYgO3oD5gVoaCGtWIePHJObzTO5hwoOh61s
        -----END PRIVATE KEY-----
        """;

    private const string TrustDomain = "fuzz.example";
    private readonly string _root = Directory.CreateTempSubdirectory("beemesh-fuzz-wlapi-").FullName;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly CertificateAuthority _authority;
    private readonly Attestor _attestor = new();
    private readonly WorkloadApiService _service;
    private readonly CallerProcess _caller;
    private readonly ECDsa _signingKey = ECDsa.Create();
    private readonly JwtBundle _signingBundle;
    private readonly Dictionary<string, long> _outcomes = new(StringComparer.Ordinal);

    /// <summary>A CA in a temporary directory; the caller is this process, attested as one workload.</summary>
    public WorkloadApiTarget()
    {
        _authority = CertificateAuthority.LoadOrCreate(Path.Combine(_root, "ca"), TrustDomain, _time);
        _service = new WorkloadApiService(_authority, _attestor, new WorkloadApiServerOptions(), _time, new Random(1), CancellationToken.None);
        _caller = CallerProcess.Open(Environment.ProcessId) ?? throw new InvalidOperationException("cannot bind this process as the caller");
        _signingKey.ImportFromPem(SigningKeyPem);
        _signingBundle = new JwtBundle(new Dictionary<string, ECDsa> { [SigningKeyId] = _signingKey });
    }

    /// <summary>The key id of <see cref="SigningKeyPem"/> as the bundle names it.</summary>
    public static string SigningKeyId { get; } = KeyId();

    /// <inheritdoc />
    public override string Name => "workload-api";

    /// <inheritdoc />
    public override IReadOnlyList<System.Type> Documented => [typeof(InvalidProtocolBufferException)];

    /// <inheritdoc />
    public override string Activity => string.Join(' ', _outcomes.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key}={o.Value}"));

    /// <summary>Times each outcome (a status code, "ok", a validation result) was seen.</summary>
    public IReadOnlyDictionary<string, long> Outcomes => _outcomes;

    /// <inheritdoc />
    public override void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        int mode = input[0];
        byte[] rest = input[1..].ToArray();
        _attestor.Refuse = (mode & 0x40) != 0;
        bool header = (mode & 0x80) == 0;
        try
        {
            switch (mode & 7)
            {
                case 0:
                    {
                        ValidateJWTSVIDResponse response = _service.ValidateJWTSVID(ValidateJWTSVIDRequest.Parser.ParseFrom(rest), Context(header, out _)).GetAwaiter().GetResult();
                        if (!SpiffeId.TryParse(response.SpiffeId, out _))
                        {
                            throw new InvalidOperationException($"ValidateJWTSVID accepted a token for '{response.SpiffeId}'");
                        }

                        Count("ok");
                        break;
                    }

                case 1:
                    {
                        JWTSVIDRequest request = JWTSVIDRequest.Parser.ParseFrom(rest);
                        JWTSVIDResponse response = _service.FetchJWTSVID(request, Context(header, out _)).GetAwaiter().GetResult();
                        // What the server issued must validate for every audience asked for.
                        foreach (string audience in request.Audience)
                        {
                            JwtSvidValidationResult check = JwtSvidValidator.Validate(response.Svids[0].Svid, audience, _authority.JwtBundle, TrustDomain, _time.GetUtcNow(), out _, out _);
                            if (check != JwtSvidValidationResult.Valid)
                            {
                                throw new InvalidOperationException($"an issued JWT-SVID does not validate for audience '{audience}': {check}");
                            }
                        }

                        Count("ok");
                        break;
                    }

                case 2:
                    Stream<JWTBundlesRequest, JWTBundlesResponse>(JWTBundlesRequest.Parser.ParseFrom(rest), (r, w, c) => _service.FetchJWTBundles(r, w, c), header);
                    break;
                case 3:
                    Stream<X509BundlesRequest, X509BundlesResponse>(X509BundlesRequest.Parser.ParseFrom(rest), (r, w, c) => _service.FetchX509Bundles(r, w, c), header);
                    break;
                case 4:
                    Stream<X509SVIDRequest, X509SVIDResponse>(X509SVIDRequest.Parser.ParseFrom(rest), (r, w, c) => _service.FetchX509SVID(r, w, c), header);
                    break;
                case 5:
                    Count(JwtBundle.TryParse(rest, out JwtBundle? bundle) ? $"jwks_keys_{Math.Min(bundle!.Keys.Count, 3)}" : "jwks_refused");
                    break;
                default:
                    ValidateSigned(rest);
                    break;
            }
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.InvalidArgument or StatusCode.PermissionDenied)
        {
            Count(e.StatusCode.ToString());
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _caller.Dispose();
        _authority.Dispose();
        _signingKey.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private static string KeyId()
    {
        using var key = ECDsa.Create();
        key.ImportFromPem(SigningKeyPem);
        return JwtBundle.KeyIdOf(key);
    }

    // A token signed with the target's key over the fuzzed header and claims, through the validator
    // and, when valid, the claims-to-Struct step of ValidateJWTSVID.
    private void ValidateSigned(byte[] rest)
    {
        int first = Array.IndexOf(rest, (byte)0);
        int second = first < 0 ? -1 : Array.IndexOf(rest, (byte)0, first + 1);
        if (second < 0)
        {
            Count("signed_short");
            return;
        }

        string header = Base64Url.EncodeToString(rest.AsSpan(0, first));
        string payload = Base64Url.EncodeToString(rest.AsSpan(first + 1, second - first - 1));
        string audience = System.Text.Encoding.UTF8.GetString(rest.AsSpan(second + 1));
        byte[] signature = _signingKey.SignData(System.Text.Encoding.ASCII.GetBytes(header + "." + payload), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        string token = header + "." + payload + "." + Base64Url.EncodeToString(signature);
        JwtSvidValidationResult result = JwtSvidValidator.Validate(token, audience, _signingBundle, TrustDomain, _time.GetUtcNow(), out SpiffeId? subject, out string? claims);
        Count("signed_" + result);
        if (result == JwtSvidValidationResult.Valid)
        {
            if (subject is null || subject.TrustDomain != TrustDomain || claims is null)
            {
                throw new InvalidOperationException("a valid result without its subject and claims");
            }

            _ = WorkloadApiService.ClaimsStruct(claims);
        }
    }

    private void Stream<TRequest, TResponse>(TRequest request, Func<TRequest, IServerStreamWriter<TResponse>, ServerCallContext, Task> call, bool header)
        where TResponse : class, IMessage
    {
        ServerCallContext context = Context(header, out CancellationTokenSource cancel);
        var writer = new FirstMessageWriter<TResponse>(cancel);
        call(request, writer, context).GetAwaiter().GetResult();
        if (writer.Written is null)
        {
            throw new InvalidOperationException($"a {typeof(TRequest).Name} stream ended without a message or a status");
        }

        Count("ok");
    }

    private ServerCallContext Context(bool header, out CancellationTokenSource cancel)
    {
        var http = new DefaultHttpContext();
        http.Features.Set(new PeerCredentialsFeature(_caller));
        var headers = new Metadata();
        if (header)
        {
            headers.Add(Beemesh.Spiffe.WorkloadApi.WorkloadApiClient.SecurityHeader, "true");
        }

        cancel = new CancellationTokenSource();
        return new CallContext(http, headers, cancel.Token);
    }

    private void Count(string outcome) => _outcomes[outcome] = _outcomes.GetValueOrDefault(outcome) + 1;

    /// <summary>Attests every caller as one workload, or none.</summary>
    private sealed class Attestor : IWorkloadAttestor
    {
        private static readonly SpiffeId Workload = SpiffeId.FromParts(TrustDomain, "/ns/default/sa/fuzz");

        public bool Refuse { get; set; }

        public SpiffeId? Attest(PeerCredentials caller) => Refuse ? null : Workload;
    }

    /// <summary>Keeps the first message of a stream and ends the call (as a client that goes away).</summary>
    private sealed class FirstMessageWriter<T>(CancellationTokenSource cancel) : IServerStreamWriter<T>
        where T : class
    {
        public T? Written { get; private set; }

        public WriteOptions? WriteOptions { get; set; }

        public Task WriteAsync(T message) => WriteAsync(message, CancellationToken.None);

        public Task WriteAsync(T message, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Written ??= message;
            cancel.Cancel();
            return Task.CompletedTask;
        }
    }

    /// <summary>The parts of a call context the service reads: headers, the HTTP context, cancellation.</summary>
    private sealed class CallContext(HttpContext http, Metadata headers, CancellationToken cancellationToken) : ServerCallContext
    {
        private readonly Dictionary<object, object> _userState = new() { ["__HttpContext"] = http };

        protected override string MethodCore => "/SpiffeWorkloadAPI/Fuzz";

        protected override string HostCore => "localhost";

        protected override string PeerCore => "unix:fuzz";

        protected override DateTime DeadlineCore => DateTime.MaxValue;

        protected override Metadata RequestHeadersCore => headers;

        protected override CancellationToken CancellationTokenCore => cancellationToken;

        protected override Metadata ResponseTrailersCore { get; } = [];

        protected override Status StatusCore { get; set; }

        protected override WriteOptions? WriteOptionsCore { get; set; }

        protected override AuthContext AuthContextCore { get; } = new(null, []);

        protected override IDictionary<object, object> UserStateCore => _userState;

        protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();

        protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
    }
}
