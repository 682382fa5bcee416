using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Beemesh.Identity.Authority;
using Beemesh.Overlay;
using Beemesh.Overlay.Codec;
using Beemesh.Overlay.Records;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// The agent's overlay: one <see cref="OverlayNode"/> driven by one owner loop (a task fed by a
/// channel), over TLS 1.3 links with ALPN <c>beemesh-overlay/1</c>. Both ends of a link present
/// their node SVIDs; each checks the other's is signed by the trust domain's root and that the node
/// it names is the one its first frame (HELLO) claims. Everything the node does happens on the loop:
/// inbound frames, link failures, timers, publications; its outbox is drained to per-peer bounded
/// queues, one writer per link. A malformed frame, a stuck peer or a failed handshake closes only
/// that link, counted. Every change a caller can observe (views, records, counters, the revoked set,
/// a renewed node SVID) bumps <see cref="ChangeVersion"/> and wakes <see cref="WaitForChangeAsync"/>.
/// </summary>
public sealed class OverlayHost : IAsyncDisposable, IOverlayObserver
{
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan RejoinInterval = TimeSpan.FromSeconds(5);

    private readonly NodeIdentity _identity;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly OverlayNode _node;
    private readonly IReadOnlyList<EndPoint> _contacts;
    private readonly Channel<Action> _events = Channel.CreateBounded<Action>(new BoundedChannelOptions(16_384) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly Dictionary<ulong, OverlayLink> _links = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, long> _counters = new(StringComparer.Ordinal);
    private readonly X509RecordVerifier _verifier;
    private readonly X509RecordSigner _signer;
    private readonly Beemesh.Agent.State.ChangeFeed _changes;
    private Task _loop = Task.CompletedTask;
    private int _viewsDigest;
    private long _nextRejoin;

    private OverlayHost(NodeIdentity identity, IPEndPoint advertised, IReadOnlyList<EndPoint> contacts, OverlayOptions options, TimeProvider time, ILogger logger)
    {
        _identity = identity;
        _time = time;
        _logger = logger;
        _contacts = contacts;
        Self = new PeerAddress(NodeIds.Of(identity.TrustDomain, identity.NodeName), advertised);
        _verifier = new X509RecordVerifier(identity.Root, identity.TrustDomain, time);
        _signer = new X509RecordSigner(identity.Svid);
        _changes = new Beemesh.Agent.State.ChangeFeed(time);
        _node = new OverlayNode(Self, options, new Random(), _verifier, _signer, this);
        // A renewed node SVID signs the records published from now on and is presented on new links;
        // records signed with the previous one stay valid until they expire.
        identity.Renewed += svid =>
        {
            _signer.Use(svid);
            Count("node_svid_renewed");
        };
    }

    /// <summary>
    /// Grows at every change of what this host shows: active and passive views, stored records,
    /// counters, the revoked set. Read it before checking a condition, then wait on
    /// <see cref="WaitForChangeAsync"/> with it, and no change in between is missed.
    /// </summary>
    public long ChangeVersion => _changes.Version;

    /// <summary>Completes once <see cref="ChangeVersion"/> exceeds <paramref name="since"/>, or after <paramref name="timeout"/>.</summary>
    public Task WaitForChangeAsync(long since, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _changes.WaitAsync(epoch: null, since, timeout, cancellationToken);

    private void Changed() => Beemesh.Agent.State.ChangeFeed.Wake(_changes.Bump().Signal);

    // On the loop, after a step: records stored, views changed and suspicions raised are counted (and so
    // signalled) as they happen; what changes without a callback (the passive view, a suspicion lifted,
    // expired records dropped) is caught by comparing a digest of the views, never by signalling every
    // step, which would wake readers whose own queries are steps of this loop.
    private void ChangedIfViewsMoved()
    {
        var digest = new HashCode();
        digest.Add(_node.Store.Count);
        digest.Add(_node.LocalHealth);
        foreach (PeerAddress peer in _node.ActiveView)
        {
            digest.Add(peer.Id);
            digest.Add(_node.IsSuspected(peer.Id));
        }

        digest.Add(-1);
        foreach (PeerAddress peer in _node.PassiveView)
        {
            digest.Add(peer.Id);
        }

        int now = digest.ToHashCode();
        if (now != _viewsDigest)
        {
            _viewsDigest = now;
            Changed();
        }
    }

    /// <summary>This node's overlay address (id and advertised node port).</summary>
    public PeerAddress Self { get; }

    /// <summary>The verifier of received records (revocations are added to it).</summary>
    public X509RecordVerifier Verifier => _verifier;

    /// <summary>Raised on the owner loop when a node is revoked for the first time here (its name), to keep it durably.</summary>
    public event Action<string>? RevocationAdded;

    /// <summary>Refuses node <paramref name="nodeName"/> from now on (a revocation restored from the state directory).</summary>
    public void RestoreRevocation(string nodeName)
    {
        ulong id = NodeIds.Of(_identity.TrustDomain, nodeName);
        _verifier.Revoked[id] = true;
        RevokedNames[id] = nodeName;
        Changed();
    }

    /// <summary>Names of the revoked nodes by node id.</summary>
    public ConcurrentDictionary<ulong, string> RevokedNames { get; } = new();

    /// <summary>Publishes the revocation of <paramref name="nodeName"/> (<paramref name="rootSignature"/>: <see cref="NodeRevocation.Sign"/>); it never expires.</summary>
    public Task<OverlayRecord> RevokeAsync(string nodeName, byte[] rootSignature) =>
        PublishAsync(new RecordContent(RecordKind.Revocation, nodeName, rootSignature, Leased: false, Subject: NodeIds.Of(_identity.TrustDomain, nodeName)));

    /// <summary>Raised on the owner loop after a record was stored (published here or accepted from a peer).</summary>
    public event Action<OverlayRecord>? RecordStored;

    /// <summary>Counters by name (links refused, malformed frames, records accepted and refused by reason, ...).</summary>
    public IReadOnlyDictionary<string, long> Counters => _counters;

    /// <summary>
    /// Starts the loop; when <paramref name="contacts"/> are given, links to the first that answers and
    /// joins the overlay through it (and retries every few seconds while this node has no neighbour).
    /// </summary>
    public static OverlayHost Start(NodeIdentity identity, IPEndPoint advertised, IReadOnlyList<EndPoint> contacts, TimeProvider? timeProvider = null, ILogger? logger = null, OverlayOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(advertised);
        if (advertised.Address.Equals(IPAddress.Any) || advertised.Address.Equals(IPAddress.IPv6Any))
        {
            throw new ArgumentException("the overlay needs --listen with the address other nodes reach this node at, not a wildcard");
        }

        var host = new OverlayHost(identity, advertised, contacts ?? [], options ?? new OverlayOptions(), timeProvider ?? TimeProvider.System, logger ?? NullLogger.Instance);
        host._node.Start([], host.Now());
        host._loop = Task.Run(host.RunLoopAsync);
        return host;
    }

    /// <summary>Runs <paramref name="action"/> on the owner loop and returns its result.</summary>
    public async Task<T> QueryAsync<T>(Func<OverlayNode, T> action)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        await _events.Writer.WriteAsync(() =>
        {
            try
            {
                done.SetResult(action(_node));
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                done.SetException(e);
            }
        }, _stop.Token).ConfigureAwait(false);
        return await done.Task.ConfigureAwait(false);
    }

    /// <summary>Publishes (signs, stores, broadcasts) <paramref name="content"/> on the owner loop.</summary>
    public Task<OverlayRecord> PublishAsync(RecordContent content) => QueryAsync(node => node.Publish(content, Now()));

    /// <summary>Deletes (a signed tombstone) the record of this node in (<paramref name="kind"/>, <paramref name="key"/>).</summary>
    public Task<OverlayRecord> DeleteAsync(RecordKind kind, string key) => QueryAsync(node => node.Delete(kind, key, Now()));

    /// <summary>Serves one inbound link the node port accepted (ALPN <c>beemesh-overlay/1</c>). Never throws for the peer's faults.</summary>
    public async Task HandleInboundAsync(SslStream tls, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tls);
        OverlayLink link;
        OverlayFrameReader reader;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
            timeout.CancelAfter(HandshakeTimeout);
            ulong id = CheckPeer(tls.RemoteCertificate);
            reader = new OverlayFrameReader(tls);
            OverlayMessage hello = await reader.ReadAsync(hello: true, timeout.Token).ConfigureAwait(false)
                ?? throw new IOException("the peer closed before its hello");
            if (hello.Peer.Id != id)
            {
                throw new AuthenticationException("the hello names another node than the peer's node SVID");
            }

            await WriteHelloAsync(tls, timeout.Token).ConfigureAwait(false);
            link = new OverlayLink(hello.Peer, outbound: false) { Stream = tls };
        }
        catch (Exception e) when (e is AuthenticationException or IOException or InvalidDataException or OperationCanceledException)
        {
            Count("links_refused");
            OverlayHostLog.LinkRefused(_logger, "inbound", e.Message);
            return;
        }

        await _events.Writer.WriteAsync(() => Register(link), _stop.Token).ConfigureAwait(false);
        await RunLinkAsync(link, reader).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void RecordAccepted(OverlayNode node, OverlayRecord record, long now)
    {
        Count("records_accepted");
        if (record.Kind == RecordKind.Revocation && !record.Tombstone && _verifier.Revoked.TryAdd(record.Subject, true))
        {
            Count("nodes_revoked");
            RevokedNames[record.Subject] = record.Key;
            RevocationAdded?.Invoke(record.Key);
            OverlayHostLog.LinkRefused(_logger, record.Key, "node revoked: its links, records and routes are refused from now on");
            ulong revoked = record.Subject;
            // After the node's current step: cut the live link to the revoked node.
            _ = PostAsync(() =>
            {
                if (_links.Remove(revoked, out OverlayLink? link))
                {
                    link.Close();
                    _node.LinkDown(link.Peer, Now());
                }
            });
        }

        RecordStored?.Invoke(record);
    }

    /// <inheritdoc />
    public void RecordRefused(OverlayNode node, PeerAddress from, OverlayRecord record, RecordRefusal reason, long now)
    {
        Count("records_refused_" + reason);
        OverlayHostLog.RecordRefused(_logger, record.ToString(), from.ToString(), reason.ToString());
    }

    /// <inheritdoc />
    public void Duplicate(OverlayNode node, PeerAddress from, OverlayRecord record, long now) => Count("broadcast_duplicates");

    /// <inheritdoc />
    public void ActiveViewChanged(OverlayNode node, PeerAddress peer, bool added, long now) => Count(added ? "active_view_added" : "active_view_removed");

    /// <inheritdoc />
    public void PeerSuspected(OverlayNode node, PeerAddress peer, long now) => Count("peers_suspected");

    /// <inheritdoc />
    public void PeerEvicted(OverlayNode node, PeerAddress peer, long now) => Count("peers_evicted");

    /// <summary>Leaves the overlay (DISCONNECT to the active view), stops the loop and closes every link.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        try
        {
            await QueryAsync(node =>
            {
                node.Leave(Now());
                Flush();
                return 0;
            }).WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or ChannelClosedException)
        {
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        _events.Writer.TryComplete();
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        foreach (OverlayLink link in _links.Values)
        {
            link.Close();
        }
    }

    /// <summary>Microseconds of the wall clock (the HLC's physical part, lease expiry).</summary>
    internal long Now() => (_time.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

    private async Task RunLoopAsync()
    {
        ChannelReader<Action> events = _events.Reader;
        while (!_stop.IsCancellationRequested)
        {
            long now = Now();
            if (_node.ActiveCount == 0 && _contacts.Count > 0 && now >= _nextRejoin)
            {
                _nextRejoin = now + (long)RejoinInterval.TotalMicroseconds;
                _ = Task.Run(DialContactsAsync);
            }

            long deadline = _node.NextDeadline;
            if (deadline <= now)
            {
                _node.Tick(now);
                Flush();
                ChangedIfViewsMoved();
                continue;
            }

            long waitMicros = Math.Min(deadline - now, 1_000_000);
            using (var wait = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
            {
                wait.CancelAfter(TimeSpan.FromMicroseconds(Math.Max(waitMicros, 1_000)));
                try
                {
                    if (!await events.WaitToReadAsync(wait.Token).ConfigureAwait(false))
                    {
                        return;
                    }
                }
                catch (OperationCanceledException)
                {
                    continue;
                }
            }

            int handled = 0;
            while (handled++ < 256 && events.TryRead(out Action? action))
            {
                action();
            }

            Flush();
            ChangedIfViewsMoved();
        }
    }

    // Links to the first contact that answers and joins through it.
    private async Task DialContactsAsync()
    {
        foreach (EndPoint contact in _contacts)
        {
            try
            {
                (SslStream tls, OverlayFrameReader reader, PeerAddress peer) = await DialAsync(contact, expected: null, _stop.Token).ConfigureAwait(false);
                if (peer.Id == Self.Id)
                {
                    await tls.DisposeAsync().ConfigureAwait(false);
                    continue;
                }

                var link = new OverlayLink(peer, outbound: true) { Stream = tls };
                await _events.Writer.WriteAsync(() =>
                {
                    Register(link);
                    if (_node.ActiveCount == 0)
                    {
                        _node.Start([peer], Now());
                    }
                }, _stop.Token).ConfigureAwait(false);
                _ = RunLinkAsync(link, reader);
                return;
            }
            catch (Exception e) when (e is SocketException or IOException or AuthenticationException or InvalidDataException or OperationCanceledException)
            {
                if (_stop.IsCancellationRequested)
                {
                    return;
                }

                Count("links_failed");
                OverlayHostLog.LinkRefused(_logger, contact.ToString() ?? "?", e.Message);
            }
        }
    }

    private async Task<(SslStream Tls, OverlayFrameReader Reader, PeerAddress Peer)> DialAsync(EndPoint endpoint, ulong? expected, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(HandshakeTimeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint, timeout.Token).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "beemesh-overlay",
                EnabledSslProtocols = SslProtocols.Tls13,
                ApplicationProtocols = [NodeListener.OverlayProtocol],
                ClientCertificateContext = _identity.Context,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                // Checked below against the trust domain's root and the peer's hello.
                RemoteCertificateValidationCallback = static (_, _, _, _) => true,
            }, timeout.Token).ConfigureAwait(false);
            if (tls.NegotiatedApplicationProtocol != NodeListener.OverlayProtocol)
            {
                throw new AuthenticationException("the peer did not negotiate ALPN beemesh-overlay/1");
            }

            ulong id = CheckPeer(tls.RemoteCertificate);
            if (expected is ulong want && want != id)
            {
                throw new AuthenticationException("the peer's node SVID names another node than the one dialled");
            }

            await WriteHelloAsync(tls, timeout.Token).ConfigureAwait(false);
            var reader = new OverlayFrameReader(tls);
            OverlayMessage hello = await reader.ReadAsync(hello: true, timeout.Token).ConfigureAwait(false)
                ?? throw new IOException("the peer closed before its hello");
            if (hello.Peer.Id != id)
            {
                throw new AuthenticationException("the hello names another node than the peer's node SVID");
            }

            return (tls, reader, hello.Peer);
        }
        catch
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private ulong CheckPeer(X509Certificate? remote)
    {
        if (remote is null)
        {
            throw new AuthenticationException("the peer presented no node SVID");
        }

        using X509Certificate2 certificate = X509CertificateLoader.LoadCertificate(remote.GetRawCertData());
        string name = NodeSvidValidator.Validate(certificate, [_identity.Root], _identity.TrustDomain, _time.GetUtcNow(), out string? error)
            ?? throw new AuthenticationException(error ?? "not a node SVID");
        ulong id = NodeIds.Of(_identity.TrustDomain, name);
        if (_verifier.Revoked.ContainsKey(id))
        {
            Count("links_refused_revoked");
            throw new AuthenticationException($"node {name} is revoked");
        }

        return id;
    }

    private Task WriteHelloAsync(SslStream tls, CancellationToken cancellationToken) =>
        tls.WriteAsync(OverlayCodec.Encode(OverlayMessage.Hello(Self, OverlayNode.ProtocolVersion)), cancellationToken).AsTask();

    // On the loop: a new link to a peer. When two links join the same pair (both dialled at once),
    // the one opened by the lower id stays, on both sides; a reconnection replaces the old link.
    private void Register(OverlayLink link)
    {
        ulong peer = link.Peer.Id;
        if (_links.TryGetValue(peer, out OverlayLink? existing) && existing != link)
        {
            ulong winner = Math.Min(Self.Id, peer);
            bool keepNew = existing.Outbound == link.Outbound || (link.Outbound ? Self.Id : peer) == winner;
            OverlayLink loser = keepNew ? existing : link;
            OverlayLink keeper = keepNew ? link : existing;
            while (loser.Queue.Reader.TryRead(out byte[]? frame))
            {
                keeper.Queue.Writer.TryWrite(frame);
            }

            loser.Close();
            _links[peer] = keeper;
            return;
        }

        _links[peer] = link;
    }

    // On the loop: a link ended; the node hears of it only if it was the current link to that peer.
    private void Down(OverlayLink link)
    {
        if (_links.TryGetValue(link.Peer.Id, out OverlayLink? current) && current == link)
        {
            _links.Remove(link.Peer.Id);
            _node.LinkDown(link.Peer, Now());
        }
    }

    // On the loop: hands the outbox to the links' queues, opening links to peers not linked yet.
    private void Flush()
    {
        if (_node.Outbox.Count == 0)
        {
            return;
        }

        OutboundMessage[] outbox = [.. _node.Outbox];
        _node.ClearOutbox();
        List<PeerAddress>? unreachable = null;
        foreach (OutboundMessage message in outbox)
        {
            if (!_links.TryGetValue(message.To.Id, out OverlayLink? link))
            {
                if (message.To.EndPoint is not IPEndPoint endpoint || message.Message.Type == OverlayMessageType.Disconnect)
                {
                    continue;
                }

                link = new OverlayLink(message.To, outbound: true);
                _links[message.To.Id] = link;
                _ = ConnectAsync(link, endpoint);
            }

            if (!link.Queue.Writer.TryWrite(OverlayCodec.Encode(message.Message)))
            {
                // A peer that does not read its queue is taken for failed, as a reset link would be.
                Count("links_overflowed");
                link.Close();
                _links.Remove(message.To.Id);
                (unreachable ??= []).Add(message.To);
            }
        }

        if (unreachable is not null)
        {
            long now = Now();
            foreach (PeerAddress peer in unreachable)
            {
                _node.LinkDown(peer, now);
            }

            Flush();
        }
    }

    private async Task ConnectAsync(OverlayLink link, IPEndPoint endpoint)
    {
        try
        {
            (SslStream tls, OverlayFrameReader reader, _) = await DialAsync(endpoint, link.Peer.Id, link.Closing.Token).ConfigureAwait(false);
            link.Stream = tls;
            await RunLinkAsync(link, reader).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or AuthenticationException or InvalidDataException or OperationCanceledException or ObjectDisposedException)
        {
            if (!_stop.IsCancellationRequested)
            {
                Count("links_failed");
                OverlayHostLog.LinkRefused(_logger, endpoint.ToString(), e.Message);
                await PostAsync(() => Down(link)).ConfigureAwait(false);
            }
        }
    }

    // Reader and writer of one connected link; when either ends, the link is down.
    private async Task RunLinkAsync(OverlayLink link, OverlayFrameReader reader)
    {
        SslStream tls = link.Stream!;
        using var both = CancellationTokenSource.CreateLinkedTokenSource(link.Closing.Token, _stop.Token);
        Task writer = WriteLoopAsync(link, tls, both.Token);
        try
        {
            while (true)
            {
                OverlayMessage? message = await reader.ReadAsync(hello: false, both.Token).ConfigureAwait(false);
                if (message is null)
                {
                    break;
                }

                PeerAddress from = link.Peer;
                await _events.Writer.WriteAsync(() =>
                {
                    if (_links.TryGetValue(from.Id, out OverlayLink? current) && current == link)
                    {
                        _node.Step(from, message, Now());
                    }
                }, both.Token).ConfigureAwait(false);
            }
        }
        catch (InvalidDataException e)
        {
            Count("frames_malformed");
            OverlayHostLog.LinkRefused(_logger, link.Peer.ToString(), e.Message);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or ChannelClosedException)
        {
        }
        finally
        {
            link.Close();
            try
            {
                await writer.ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
            {
            }

            await tls.DisposeAsync().ConfigureAwait(false);
            await PostAsync(() => Down(link)).ConfigureAwait(false);
        }
    }

    private static async Task WriteLoopAsync(OverlayLink link, SslStream tls, CancellationToken cancellationToken)
    {
        ChannelReader<byte[]> queue = link.Queue.Reader;
        while (await queue.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (queue.TryRead(out byte[]? frame))
            {
                await tls.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
            }

            await tls.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task PostAsync(Action action)
    {
        try
        {
            await _events.Writer.WriteAsync(action, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
        }
    }

    /// <summary>Counts an event of the agent's overlay services (policy sets applied or refused, ...) with the overlay's counters.</summary>
    internal void CountExternal(string name) => Count(name);

    /// <summary>The counters in Prometheus text format (<c>beemesh_overlay_NAME_total</c>; refusals by reason as a label).</summary>
    public string RenderMetrics()
    {
        var text = new System.Text.StringBuilder();
        foreach ((string name, long value) in _counters.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            const string refused = "records_refused_";
            text.Append(name.StartsWith(refused, StringComparison.Ordinal)
                ? $"beemesh_overlay_records_refused_total{{reason=\"{name[refused.Length..]}\"}} "
                : $"beemesh_overlay_{name}_total ");
            text.Append(value.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append('\n');
        }

        return text.ToString();
    }

    private void Count(string name)
    {
        _counters.AddOrUpdate(name, 1, static (_, v) => v + 1);
        Changed();
    }
}
