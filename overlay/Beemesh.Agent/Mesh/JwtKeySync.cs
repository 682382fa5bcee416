using Beemesh.Identity.Authority;
using Beemesh.Overlay;
using Beemesh.Overlay.Records;
using Beemesh.Spiffe.Jwt;
using Microsoft.Extensions.Logging;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// Makes JWT-SVIDs verifiable across nodes. Each node signs its JWT-SVIDs with a key of its own; it
/// publishes the public half as a trust bundle record (kind <see cref="RecordKind.Bundle"/>, key
/// <c>jwt/NODE</c>, a JWKS document, a lease the overlay renews, signed with its node SVID), and takes
/// every other live node's keys into its CA's JWT bundle (<see cref="CertificateAuthority.SetPeerJwtKeys"/>),
/// which the Workload API serves (FetchJWTBundles) and validates with (ValidateJWTSVID). A JWKS record
/// counts only when signed by the node its key names, not revoked and not expired (a node that dies
/// takes its keys off every other node within the lease); a key whose <c>kid</c> is not the id of the
/// key itself is left out, so no node can shadow another's key id. Recomputed at every overlay change.
/// </summary>
internal sealed class JwtKeySync : IAsyncDisposable
{
    /// <summary>Record key prefix of the JWKS records: <c>jwt/NODE</c>.</summary>
    public const string KeyPrefix = "jwt/";

    // Lease expiry happens without an overlay change; look again at least this often.
    private static readonly TimeSpan Recheck = TimeSpan.FromSeconds(5);

    private readonly OverlayHost _overlay;
    private readonly CertificateAuthority _authority;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly Beemesh.Agent.State.ChangeFeed _passes;

    private JwtKeySync(OverlayHost overlay, CertificateAuthority authority, ILogger logger)
    {
        _overlay = overlay;
        _authority = authority;
        _logger = logger;
        _passes = new Beemesh.Agent.State.ChangeFeed(TimeProvider.System);
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Times the other nodes' keys were collected and handed to the CA.</summary>
    public long Passes => _passes.Version;

    /// <summary>Completes once <see cref="Passes"/> exceeds <paramref name="since"/>, or after <paramref name="timeout"/>.</summary>
    public Task WaitForPassAsync(long since, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _passes.WaitAsync(epoch: null, since, timeout, cancellationToken);

    /// <summary>Publishes this node's JWT key and starts following the other nodes'.</summary>
    public static async Task<JwtKeySync> StartAsync(OverlayHost overlay, CertificateAuthority authority, string nodeName, ILogger logger)
    {
        await overlay.PublishAsync(new RecordContent(RecordKind.Bundle, KeyPrefix + nodeName, authority.OwnJwtBundle.ToJwks(), Leased: true)).ConfigureAwait(false);
        return new JwtKeySync(overlay, authority, logger);
    }

    private async Task RunAsync()
    {
        CancellationToken stop = _stop.Token;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                long seen = _overlay.ChangeVersion;
                try
                {
                    Dictionary<string, byte[]> keys = await _overlay.QueryAsync(node => PeerKeys(node, _overlay)).ConfigureAwait(false);
                    _authority.SetPeerJwtKeys(keys);
                    Beemesh.Agent.State.ChangeFeed.Wake(_passes.Bump().Signal);
                }
                catch (Exception e) when (e is InvalidOperationException or ArgumentException)
                {
                    OverlayHostLog.LinkRefused(_logger, "jwt keys", e.Message);
                }

                await _overlay.WaitForChangeAsync(seen, Recheck, stop).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or System.Threading.Channels.ChannelClosedException)
        {
        }
    }

    /// <summary>On the overlay's loop: kid → SubjectPublicKeyInfo of the JWT keys every other live node published.</summary>
    internal static Dictionary<string, byte[]> PeerKeys(OverlayNode node, OverlayHost overlay)
    {
        long now = overlay.Now();
        var keys = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (OverlayRecord record in node.Store.Records)
        {
            if (record.Kind != RecordKind.Bundle || record.Tombstone || record.IsExpired(now) || record.Origin == node.Self.Id
                || overlay.Verifier.Revoked.ContainsKey(record.Origin)
                || overlay.Verifier.SignerName(record) is not { } signer || record.Key != KeyPrefix + signer
                || !JwtBundle.TryParse(record.Payload.Span, out JwtBundle? bundle))
            {
                continue;
            }

            foreach ((string kid, System.Security.Cryptography.ECDsa key) in bundle!.Keys)
            {
                keys[kid] = key.ExportSubjectPublicKeyInfo();
                key.Dispose();
            }
        }

        return keys;
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
