using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Mesh;
using Beemesh.Identity.Authority;
using Beemesh.Overlay;
using Beemesh.Overlay.Codec;
using Beemesh.Overlay.Records;
using Beemesh.Overlay.Simulation;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Fuzz;

/// <summary>
/// What a peer sends on an overlay link: the first byte holds flags, the rest is a run of overlay
/// frames (<see cref="OverlayCodec"/>). Flag 1: the first frame is the link's Hello
/// (<see cref="OverlayCodec.TryReadHello"/>). Flag 2: records whose origin is the peer are re-signed
/// with the peer's valid node SVID before they are delivered, so the overlay's handling past the
/// signature check (store, tree repair, anti-entropy, the members view) runs on fuzzed records.
/// Every decoded frame must encode back to the same bytes; every record goes through
/// <see cref="X509RecordVerifier.Verify"/> (garbage signatures must be refused, never throw) and the
/// message into a running <see cref="OverlayNode"/> whose clock moves 100 ms a frame. A malformed
/// frame ends the link, as the agent's frame reader does.
/// </summary>
public sealed class GossipTarget : FuzzTarget, IDisposable
{
    /// <summary>The trust domain of the target's CA.</summary>
    public const string TrustDomain = "fuzz.example";

    /// <summary>The sending peer's node name; its id is <see cref="NodeIds.Of"/> of it.</summary>
    public const string PeerName = "peer";

    private readonly string _root = Directory.CreateTempSubdirectory("beemesh-fuzz-gossip-").FullName;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly CertificateAuthority _authority;
    private readonly X509RecordVerifier _verifier;
    private readonly X509RecordSigner _peerSigner;
    private readonly X509Certificate2 _peerSvid;
    private readonly PeerAddress _self = new(NodeIds.Of(TrustDomain, "self"));
    private readonly PeerAddress _peer = new(NodeIds.Of(TrustDomain, PeerName));
    private readonly Dictionary<string, long> _outcomes = new(StringComparer.Ordinal);

    /// <summary>A CA in a temporary directory, the verifier the agent builds on it and the peer's node SVID.</summary>
    public GossipTarget()
    {
        _authority = CertificateAuthority.LoadOrCreate(Path.Combine(_root, "ca"), TrustDomain, _time);
        _verifier = new X509RecordVerifier(_authority.Root, TrustDomain, _time);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 svid = _authority.IssueNodeSvid(PeerName, new CertificateRequest("CN=unused", key, HashAlgorithmName.SHA256).PublicKey);
        _peerSvid = svid.CopyWithPrivateKey(key);
        _peerSigner = new X509RecordSigner(_peerSvid);
    }

    /// <inheritdoc />
    public override string Name => "gossip-records";

    /// <inheritdoc />
    public override string Activity => string.Join(' ', _outcomes.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key}={o.Value}"));

    /// <summary>Times each outcome (a frame status, a record refusal, "accepted") was seen.</summary>
    public IReadOnlyDictionary<string, long> Outcomes => _outcomes;

    /// <inheritdoc />
    public override void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        bool hello = (input[0] & 1) != 0;
        bool sign = (input[0] & 2) != 0;
        ReadOnlySpan<byte> data = input[1..];
        long now = 1_000_000_000;
        var node = new OverlayNode(_self, new OverlayOptions(), new Random(1), _verifier, new SimulationSignature(7));
        node.Start([_peer], now);
        while (!data.IsEmpty)
        {
            FrameStatus status;
            OverlayMessage? message = null;
            int consumed;
            OverlayCodecError error;
            if (hello)
            {
                status = OverlayCodec.TryReadHello(data, out PeerAddress from, out consumed, out error);
                if (status == FrameStatus.Complete)
                {
                    message = OverlayMessage.Hello(from, OverlayNode.ProtocolVersion);
                }

                hello = false;
            }
            else
            {
                status = OverlayCodec.TryReadFrame(data, out message, out consumed, out error);
            }

            if (status != FrameStatus.Complete)
            {
                Count(status == FrameStatus.Malformed ? "malformed_" + error : "incomplete");
                if ((status == FrameStatus.Malformed) == (error == OverlayCodecError.None))
                {
                    throw new InvalidOperationException($"frame status {status} with error {error}");
                }

                break;
            }

            byte[] again = OverlayCodec.Encode(message!);
            if (!again.AsSpan().SequenceEqual(data[..consumed]))
            {
                throw new InvalidOperationException($"a {message!.Type} frame of {consumed} bytes encodes back to {again.Length} other bytes");
            }

            data = data[consumed..];
            if (message!.Record is { } record)
            {
                if (sign && record.Origin == _peer.Id && record.Signature.Length <= OverlayRecord.MaxSignatureLength)
                {
                    record = record.WithSignature(_peerSigner.Sign(record));
                    message = OverlayMessage.Gossip(record, message.Flag);
                }

                RecordRefusal? refusal = _verifier.Verify(record);
                Count(refusal is { } r ? "refused_" + r : "accepted");
            }

            if (message.Type != OverlayMessageType.Hello)
            {
                node.Step(_peer, message, now);
            }

            now += 100_000;
            node.Tick(now);
            node.ClearOutbox();
        }

        _ = MembersView.Build(node, "self", now);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _peerSvid.Dispose();
        _authority.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private void Count(string outcome) => _outcomes[outcome] = _outcomes.GetValueOrDefault(outcome) + 1;
}
