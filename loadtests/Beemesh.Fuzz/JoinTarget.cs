using System.Text;
using Beemesh.Identity.Authority;
using Beemesh.Identity.Join;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Fuzz;

/// <summary>
/// Join tokens and the join protocol's server side. The first byte picks what the rest is:
/// (mode % 3) 0 a printed token (<c>bmt1.ID.SECRET.sha256-FP</c>) through <see cref="JoinToken.TryParse"/>;
/// 1 the bytes a joiner sends after the TLS handshake: length-prefixed JSON frames read by
/// <see cref="JoinProtocol.ReadAsync"/>, each decoded message answered by the join server
/// (the token store, node registry and CA of a first node in a temporary directory); 2 the same,
/// but the target puts one of its live tokens' id and a valid proof into each join request, so the
/// checks past the proof (signing requests, names, issuing, redeeming) run on fuzzed requests.
/// A malformed stream ends in the protocol's <see cref="InvalidDataException"/> or
/// <see cref="EndOfStreamException"/> (the server answers bad_request or drops the connection).
/// </summary>
public sealed class JoinTarget : FuzzTarget, IDisposable
{
    /// <summary>Bytes standing for the server's TLS certificate in the proof transcript.</summary>
    public static readonly byte[] ServerCertificate = Encoding.ASCII.GetBytes("join server certificate");

    private const int JoinsPerServer = 500;
    private readonly string _root = Directory.CreateTempSubdirectory("beemesh-fuzz-join-").FullName;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly CertificateAuthority _authority;
    private readonly Dictionary<string, long> _outcomes = new(StringComparer.Ordinal);
    private JoinServer _server = null!;
    private JoinTokenStore _tokens = null!;
    private JoinToken _token = null!;
    private int _generation;
    private int _joins;

    /// <summary>A first node's CA, token store and registry in a temporary directory.</summary>
    public JoinTarget()
    {
        _authority = CertificateAuthority.LoadOrCreate(Path.Combine(_root, "ca"), "fuzz.example", _time);
        NewServer();
    }

    /// <inheritdoc />
    public override string Name => "join-token";

    /// <inheritdoc />
    public override IReadOnlyList<Type> Documented => [typeof(InvalidDataException), typeof(EndOfStreamException)];

    /// <inheritdoc />
    public override string Activity => string.Join(' ', _outcomes.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key}={o.Value}"));

    /// <summary>Times each outcome (a token error, a refusal, "joined") was seen.</summary>
    public IReadOnlyDictionary<string, long> Outcomes => _outcomes;

    /// <inheritdoc />
    public override void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        int mode = input[0] % 3;
        byte[] rest = input[1..].ToArray();
        if (mode == 0)
        {
            ParseToken(Encoding.UTF8.GetString(rest));
            return;
        }

        using var stream = new MemoryStream(rest, writable: false);
        while (true)
        {
            JoinMessage request = JoinProtocol.ReadAsync(stream, CancellationToken.None).GetAwaiter().GetResult();
            if (mode == 2 && request is { Type: "join", NodeName: not null, NodeCaRequest: not null, NodeSvidRequest: not null })
            {
                request.TokenId = _token.Id;
                byte[] transcript = JoinProof.Transcript(_token.Id, ServerCertificate, _authority.Root.RawData, request.NodeName, request.NodeCaRequest, request.NodeSvidRequest);
                request.Proof = JoinProof.Compute(_token.Verifier(), transcript);
            }

            (JoinRefusal? refusal, string line, JoinMessage answer) = _server.ProcessAsync(request, ServerCertificate, CancellationToken.None).GetAwaiter().GetResult();
            if (string.IsNullOrEmpty(line) || line.Contains('\n', StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"a join answer without a one-line reason: '{line}'");
            }

            if (refusal is { } r)
            {
                if (answer.Type != "error" || answer.Code != r.ToString())
                {
                    throw new InvalidOperationException($"refusal {r} answered as {answer.Type}/{answer.Code}");
                }

                Count(r.ToString());
                continue;
            }

            if (answer.Type != "joined" || answer.NodeCa is null || answer.NodeSvid is null || answer.Bundle is not [_])
            {
                throw new InvalidOperationException($"a join accepted without credentials: {answer.Type}");
            }

            if (mode != 2)
            {
                throw new InvalidOperationException($"a join was accepted without a valid proof: {request.TokenId}");
            }

            Count("joined");
            // The token is used now; the next join needs another (and a fresh registry now and then).
            if (++_joins % JoinsPerServer == 0)
            {
                _server.Dispose();
                NewServer();
            }
            else
            {
                _token = _tokens.Create();
            }
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _server.Dispose();
        _authority.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private void ParseToken(string text)
    {
        if (JoinToken.TryParse(text, out JoinToken? token, out JoinTokenError error))
        {
            // What parses prints back to a token that parses to the same parts.
            if (error != JoinTokenError.None || !JoinToken.TryParse(token!.ToString(), out JoinToken? again, out _) || again != token)
            {
                throw new InvalidOperationException($"token '{text}' does not round-trip");
            }

            Count("token_ok");
            return;
        }

        if (token is not null || error == JoinTokenError.None || string.IsNullOrEmpty(JoinToken.Describe(error)))
        {
            throw new InvalidOperationException($"token '{text}' refused without a reason");
        }

        Count("token_" + error);
    }

    private void NewServer()
    {
        string state = Path.Combine(_root, $"node-{_generation++}");
        if (_generation > 1)
        {
            Directory.Delete(Path.Combine(_root, $"node-{_generation - 2}"), recursive: true);
        }

        _server = JoinServer.Create(_authority, state, "first", timeProvider: _time);
        _tokens = new JoinTokenStore(state, JoinToken.FingerprintOf(_authority.Root), _time);
        _token = _tokens.Create();
    }

    private void Count(string outcome) => _outcomes[outcome] = _outcomes.GetValueOrDefault(outcome) + 1;
}
