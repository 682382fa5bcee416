using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Runtime.CompilerServices;
using Beemesh.Sidecar.State.Replicas;
using Beemesh.State.Api;
using Beemesh.State.Strong;
using DotNext.Net.Cluster.Consensus.Raft;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.State.Strong;

/// <summary>
/// One replica of a strongly consistent store: a member of the store's Raft group (DotNext
/// <see cref="RaftCluster"/> over TCP with mutual TLS, both sides presenting the workload's
/// X.509-SVID and accepting only a peer with the same SPIFFE ID), with its write-ahead log and
/// snapshots in its own directory.
/// </summary>
/// <remarks>
/// <para>Writes go through the leader's log: a write is answered once its entry is committed (on a
/// majority, each flushing its log to disk before it acknowledges) and applied. Reads are answered
/// by the leader after a read barrier (it confirms it still leads a majority and has applied
/// everything committed), so both are linearizable. A follower sends the request to the leader
/// over a second mutual-TLS connection (the forward port) and relays the answer.</para>
/// <para>Every operation has a deadline (<see cref="StrongStoreOptions.OperationTimeout"/>): without a
/// leader or a quorum it fails with <see cref="StrongStoreUnavailableException"/>. A write that
/// times out may still commit later (its outcome is unknown, as with any consensus store).</para>
/// <para>A leader that goes silent (its packets dropped, or its process stopped) is replaced: a
/// connection to a member, TLS handshake included, must be made within two thirds of the lower
/// election timeout, so a vote asked of the silent member fails before the candidate's round ends;
/// and a request a follower had sent to it is given up as soon as the follower learns that the
/// leader changed (a read is sent again to the new leader, a write fails with its outcome unknown).</para>
/// </remarks>
public sealed class StrongStore : IStateStore, IAsyncDisposable
{
    private const string ForwardKey = "forward";
    private const string RaftKey = "raft";
    private readonly StrongStoreOptions _options;
    private readonly ILogger _logger;
    private readonly ReplicaSlot _slot;
    private readonly RaftStateMachine _machine;
    private readonly WriteAheadLog _log;
    private readonly RaftCluster _cluster;
    private readonly ReplicaLink _link;
    private readonly StrongRelay? _relay;
    private readonly List<IDisposable> _served = [];
    private readonly CancellationTokenSource _stopping = new();
    private CancellationTokenSource _leaderKnown = new();
    private long _forwarded;

    private StrongStore(StrongStoreOptions options, ReplicaSlot slot, RaftStateMachine machine, WriteAheadLog log, RaftCluster cluster, ReplicaLink link, StrongRelay? relay, IPEndPoint raft)
    {
        _relay = relay;
        _options = options;
        _logger = options.LoggerFactory.CreateLogger("beemesh.state.strong");
        _slot = slot;
        _machine = machine;
        _log = log;
        _cluster = cluster;
        _link = link;
        RaftEndPoint = raft;
    }

    /// <summary>The store name.</summary>
    public string Name => _options.Name;

    /// <summary>This replica's Raft endpoint (its identity in the group).</summary>
    public IPEndPoint RaftEndPoint { get; }

    /// <summary>Where this replica accepts forwarded requests.</summary>
    public IPEndPoint ForwardEndPoint => _link.EndPoint;

    /// <summary>The current Raft term as this replica knows it.</summary>
    public long Term => _cluster.Term;

    /// <summary>True while this replica leads the group.</summary>
    public bool IsLeader => !_cluster.LeadershipToken.IsCancellationRequested;

    /// <summary>The group's members as this replica knows them.</summary>
    public IReadOnlyList<EndPoint> Members => [.. _cluster.Members.Select(static m => m.EndPoint)];

    /// <summary>Bytes of keys and values held.</summary>
    public long Bytes => _machine.State.Bytes;

    /// <summary>Index of the last entry applied here.</summary>
    public long LastApplied => _machine.State.LastApplied;

    /// <summary>TLS peers (Raft or forward) refused because their SPIFFE ID is not this workload's.</summary>
    public long RefusedPeers => _link.RefusedPeers;

    /// <summary>Connections this replica's relays carried to other nodes, and spliced from them to this node's replicas.</summary>
    public (long Carried, long Spliced) Relayed => _relay is null ? (0, 0) : (_relay.Carried, _relay.Spliced);

    /// <summary>This replica's relay to other nodes' replicas (null without a mesh).</summary>
    internal StrongRelay? Relay => _relay;

    /// <summary>Requests this replica sent to the leader.</summary>
    public long Forwarded => Interlocked.Read(ref _forwarded);

    /// <summary>Raised with the Raft term when this replica becomes the leader.</summary>
    public event Action<StrongStore, long>? BecameLeader;

    /// <summary>
    /// Starts this replica: takes over a gone replica's directory (and its place in the group) or
    /// makes a new one; bootstraps the group when no replica of the store runs, else asks the
    /// leader, through a running replica, to add it, one replica at a time.
    /// </summary>
    /// <remarks>
    /// With a mesh (<see cref="StrongStoreOptions.Mesh"/>), the replicas of other nodes count: a
    /// replica bootstraps only when neither this node's store directory nor the mesh's routes (the
    /// agent's list, loaded before the state API starts) show another running replica of the
    /// workload; otherwise it asks a replica of another node, through that node's tunnel port, to
    /// have the leader add it, and waits until it is a member (up to the join timeout) rather than
    /// ever forming a group of its own.
    /// </remarks>
    public static async Task<StrongStore> StartAsync(StrongStoreOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        Directory.CreateDirectory(options.Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using FileStream joinLock = await ReplicaSlot.LockStoreAsync(options.Directory, options.JoinTimeout, cancellationToken).ConfigureAwait(false);
        // A gone replica's slot is taken over only when its Raft endpoint (its identity in the group) can be bound here.
        // With a mesh, a member's endpoint must name its node: the replicas of this node listen on
        // the node's own loopback address for the store, which other nodes relay to.
        IPAddress listen = options.Mesh is not null && options.ListenAddress.Equals(IPAddress.Loopback)
            ? StrongRelay.NodeAddress(options.Directory)
            : options.ListenAddress;
        // A store whose replicas listen elsewhere (a pod's address, or 127.0.0.1 for a store made
        // before groups spanned nodes) keeps to this node.
        IReplicaMesh? mesh = StrongRelay.IsNodeLoopback(listen) ? options.Mesh : null;
        (ReplicaSlot slot, List<IPEndPoint> peers) = ReplicaSlot.Claim(options.Directory, ForwardKey, RaftKey, listen);
        StrongStore? store = null;
        ReplicaLink? link = null;
        StrongRelay? relay = null;
        try
        {
            IPEndPoint raft = slot.PreviousEndPoints.GetValueOrDefault(RaftKey) ?? new IPEndPoint(listen, FreePort(listen));
            // The server names of other nodes' tunnel ports, for a join sent to a replica there.
            var tunnelNames = new System.Collections.Concurrent.ConcurrentDictionary<IPEndPoint, string>();
            link = new ReplicaLink($"strong store {options.Name}", options.Source, options.Identity, ForwardFrame.MaxBytes, options.LoggerFactory.CreateLogger("beemesh.state.strong"), listen: listen)
            {
                Protocol = mesh is null ? null : ReplicaLink.ProtocolFor("strong", options.Name),
                TunnelServerName = mesh is null ? null : peer => tunnelNames.GetValueOrDefault(peer),
            };
            relay = mesh is null ? null : new StrongRelay(
                options.Name, options.Directory, listen, options.Source, options.Identity, mesh, TimeSpan.FromSeconds(2), options.LoggerFactory.CreateLogger("beemesh.state.strong"));
            var state = new StrongStateMachine(options.MaxBytes);
            var machine = new RaftStateMachine(new DirectoryInfo(Path.Combine(slot.Path, "snapshots")), state);
            await machine.RestoreAsync(cancellationToken).ConfigureAwait(false);
            // DotNext 6.12 always flushes on commit (FlushOnCommit and FlushInterval are fixed): an
            // entry is written to disk before the log counts it committed, and the checkpoint
            // (commit index) is written on every commit.
            var log = new WriteAheadLog(new WriteAheadLog.Options { Location = Path.Combine(slot.Path, "wal") }, machine);
            // Replicas of other nodes, when none runs here: the group is theirs to join.
            IReadOnlyList<ReplicaNode> remote = peers.Count == 0 && mesh is not null ? mesh.RemoteNodes() : [];
            bool coldStart = peers.Count == 0 && remote.Count == 0;
            StrongStore? self = null;
            IPEndPoint advertised = options.Advertise?.Invoke(raft) ?? raft;
            var configuration = new RaftCluster.TcpConfiguration(raft)
            {
                PublicEndPoint = advertised,
                ColdStart = coldStart,
                ConfigurationStorage = new RaftMemberStorage(Path.Combine(slot.Path, "members")),
                LowerElectionTimeout = options.ElectionTimeout.Lower,
                UpperElectionTimeout = options.ElectionTimeout.Upper,
                // A request (an append, a snapshot install) may take twice the upper election
                // timeout; making the connection it needs, TLS handshake included, may not take
                // longer than two thirds of the lower one. DotNext's candidate counts its votes only
                // once every member answered or failed and gives up when its election timeout
                // passes: with a connect as long as a request, a member that accepts and never
                // answers (a stopped process) or drops the packets (a partition) made every round
                // fail, so a leader that went silent was not replaced until it was back.
                RequestTimeout = TimeSpan.FromMilliseconds(options.ElectionTimeout.Upper * 2),
                ConnectTimeout = ConnectTimeoutFor(options.ElectionTimeout),
                LoggerFactory = options.LoggerFactory,
                SslOptions = new DotNext.Net.Security.SslOptions
                {
                    ServerOptions = link.ServerOptions(),
                    ClientOptions = link.ClientOptions(),
                },
                Announcer = coldStart ? null : (address, _, token) => self!.AnnounceAsync(address, peers, tunnelNames, token),
            };
            configuration.Metadata[ForwardKey] = (options.Advertise?.Invoke(link.EndPoint) ?? link.EndPoint).ToString();
            var cluster = new RaftCluster(configuration) { AuditTrail = log };
            store = self = new StrongStore(options, slot, machine, log, cluster, link, relay, advertised);
            cluster.LeaderChanged += (_, leader) =>
            {
                self.OnLeaderChanged();
                if (leader is { IsRemote: false })
                {
                    self.BecameLeader?.Invoke(self, cluster.Term);
                }
            };
            slot.WriteEndpoints(new Dictionary<string, IPEndPoint> { [RaftKey] = raft, [ForwardKey] = link.EndPoint });
            link.Start(store.HandleAsync);
            if (mesh is not null)
            {
                // Before the cluster starts: the leader, once asked to add this replica, reaches it
                // through these (its Raft endpoint behind this node's tunnel port).
                store._served.Add(mesh.Serve(link.Protocol!.Value, link.ServeTunnelledAsync));
                store._served.Add(mesh.Serve(relay!.Protocol, relay.ServeAsync));
                _ = store.KeepRelaysAsync();
            }

            await cluster.StartAsync(cancellationToken).ConfigureAwait(false);
            store._logger.LogInformation(
                "strong store {Store}: replica {Raft} (forward {Forward}) {How}", options.Name, raft, store.ForwardEndPoint,
                coldStart ? "bootstrapped the group" : slot.PreviousEndPoints.ContainsKey(RaftKey) ? "rejoined with its log"
                : remote.Count > 0 ? $"joined the group of {string.Join(", ", remote.Select(static n => n.Node))}" : "joined the group");
            return store;
        }
        catch
        {
            if (store is not null)
            {
                await store.StopAsync(leave: false).ConfigureAwait(false);
            }
            else
            {
                if (link is not null)
                {
                    await link.DisposeAsync().ConfigureAwait(false);
                }

                if (relay is not null)
                {
                    await relay.DisposeAsync().ConfigureAwait(false);
                }

                slot.Dispose();
            }

            throw;
        }
    }

    /// <summary>The current values of <paramref name="scopedKeys"/> (null where absent), read linearizably through the leader.</summary>
    public async Task<StateValue?[]> GetAsync(IReadOnlyList<string> scopedKeys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scopedKeys);
        using var body = new MemoryStream();
        using (var writer = new BinaryWriter(body, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(scopedKeys.Count);
            foreach (string key in scopedKeys)
            {
                writer.Write(key);
            }
        }

        byte[] answer = await ExecuteAsync(ForwardFrame.Read, body.ToArray(), cancellationToken).ConfigureAwait(false);
        using var reader = new BinaryReader(new MemoryStream(answer), Encoding.UTF8);
        var values = new StateValue?[reader.ReadInt32()];
        for (int i = 0; i < values.Length; i++)
        {
            if (reader.ReadBoolean())
            {
                byte[] value = reader.ReadBytes(reader.ReadInt32());
                string etag = reader.ReadString();
                long expires = reader.ReadInt64();
                values[i] = new StateValue(value, etag, expires == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(expires));
            }
        }

        return values;
    }

    /// <summary>Applies <paramref name="operations"/> as one log entry, all or none.</summary>
    public async Task<StateWriteResult> WriteAsync(IReadOnlyList<StateOperation> operations, CancellationToken cancellationToken)
    {
        byte[] command = new StrongCommand(_options.Time.GetUtcNow().ToUnixTimeMilliseconds(), operations).Encode();
        byte[] answer = await ExecuteAsync(ForwardFrame.Write, command, cancellationToken).ConfigureAwait(false);
        return DecodeWriteResult(answer);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => new(StopAsync(leave: true));

    /// <summary>Stops without leaving the group, as a killed process would (its slot stays for a restart).</summary>
    internal Task CrashAsync() => StopAsync(leave: false);

    /// <summary>Completes once this replica has applied the entry at <paramref name="index"/>.</summary>
    internal Task WaitForAppliedAsync(long index, CancellationToken cancellationToken) =>
        _log.WaitForApplyAsync(index, cancellationToken).AsTask();

    /// <summary>This replica's own applied value of <paramref name="scopedKey"/> (not linearizable: for tests of replication).</summary>
    internal StateValue? LocalGet(string scopedKey) => _machine.State.Get(scopedKey, _options.Time.GetUtcNow().ToUnixTimeMilliseconds());

    /// <summary>Runs a request here when this replica leads, else at the leader; retries across elections until the deadline.</summary>
    private async Task<byte[]> ExecuteAsync(byte kind, byte[] body, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        deadline.CancelAfter(_options.OperationTimeout);
        CancellationToken token = deadline.Token;
        string? lastProblem = null;
        // A member's metadata is cached; a restarted replica keeps its Raft endpoint but not its
        // forward port, so after a failed send the leader's metadata is fetched again.
        bool refresh = false;
        try
        {
            while (true)
            {
                if (IsLeader)
                {
                    byte[]? local = await TryLocallyAsync(kind, body, token).ConfigureAwait(false);
                    if (local is not null)
                    {
                        return local;
                    }

                    if (kind == ForwardFrame.Write)
                    {
                        throw WriteOutcomeUnknown("this replica");
                    }

                    lastProblem = "this replica lost the leadership";
                    continue;
                }

                // Cancelled when the leader this replica knows changes (to another member or to none):
                // read before the leader, so that a change after this point cancels what is sent.
                CancellationToken leaderKnown = Volatile.Read(ref _leaderKnown).Token;
                var leader = _cluster.Leader;
                if (leader is null)
                {
                    try
                    {
                        await _cluster.WaitForLeaderAsync(Timeout.InfiniteTimeSpan, token).ConfigureAwait(false);
                    }
                    catch (TimeoutException)
                    {
                    }

                    lastProblem = "no leader was elected";
                    continue;
                }

                if (!leader.IsRemote)
                {
                    continue;
                }

                using var whileItLeads = CancellationTokenSource.CreateLinkedTokenSource(token, leaderKnown);
                IReadOnlyDictionary<string, string>? metadata = refresh ? null : leader.TryGetMetadata();
                try
                {
                    if (metadata is null)
                    {
                        metadata = await leader.GetMetadataAsync(refresh: true, whileItLeads.Token).ConfigureAwait(false);
                        // The connection that fetched it is closed rather than kept idle: once the
                        // leader went silent, the next vote this replica asks of it would go down
                        // that connection and wait for the whole request timeout (1.2 s), where a new
                        // connection fails within the connect timeout.
                        await leader.CancelPendingRequestsAsync().ConfigureAwait(false);
                    }
                }
                catch (Exception e) when (e is DotNext.Net.Cluster.MemberUnavailableException || (e is OperationCanceledException && !token.IsCancellationRequested))
                {
                    lastProblem = $"the leader {leader.EndPoint} could not be reached";
                    refresh = true;
                    await Task.Delay(20, token).ConfigureAwait(false);
                    continue;
                }

                if (!metadata.TryGetValue(ForwardKey, out string? text) || !IPEndPoint.TryParse(text, out IPEndPoint? forward))
                {
                    throw new StrongStoreUnavailableException($"the leader {leader.EndPoint} did not say where it takes requests");
                }

                _relay?.Ensure(forward);
                Interlocked.Increment(ref _forwarded);
                (byte status, byte[] answer)? response;
                var written = new StrongBox<bool>();
                try
                {
                    response = await _link.TrySendAsync(forward, kind, body, written, whileItLeads.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!token.IsCancellationRequested)
                {
                    // The leader changed while the request was with it: it may never answer (cut off,
                    // stopped). A read, a join and a leave can be sent again; a write may have reached
                    // its log and can be committed by the next leader, so sending it again could apply
                    // it twice: it ends here, its outcome unknown, as on a timeout.
                    if (kind == ForwardFrame.Write && written.Value)
                    {
                        throw WriteOutcomeUnknown($"the leader {leader.EndPoint}");
                    }

                    lastProblem = $"the leader {leader.EndPoint} lost its leadership while it had the request";
                    refresh = true;
                    continue;
                }

                switch (response)
                {
                    case (ForwardFrame.Ok, byte[] ok):
                        return ok;
                    case (ForwardFrame.Unavailable, byte[] reason):
                        throw new StrongStoreUnavailableException(Encoding.UTF8.GetString(reason));
                    case null when kind == ForwardFrame.Write && written.Value:
                        // The connection failed: the write may have reached the leader's log before
                        // it did, so it is not sent again. (One the leader refused or never answered
                        // was not received: it goes to whoever leads next, below.)
                        throw new StrongStoreUnavailableException(
                            $"strong store {_options.Name}: the connection to the leader {leader.EndPoint} failed while it had the write (its outcome is unknown)");
                    default:
                        lastProblem = $"the leader {leader.EndPoint} could not be reached or no longer leads";
                        refresh = true;
                        await Task.Delay(20, token).ConfigureAwait(false);
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new StrongStoreUnavailableException(
                $"strong store {_options.Name}: no quorum within {_options.OperationTimeout.TotalSeconds:0.#} s ({lastProblem ?? "the leader did not answer"})");
        }
    }

    /// <summary>
    /// A write given up once it may be in a leader's log: that leader lost its leadership, and the next
    /// one may commit the entry or not. It is never proposed again (that could apply it twice).
    /// </summary>
    private StrongStoreUnavailableException WriteOutcomeUnknown(string who) =>
        new($"strong store {_options.Name}: {who} lost its leadership while it had the write (its outcome is unknown)");

    /// <summary>Cancels what was sent to the leader this replica knew, and starts knowing the next one.</summary>
    private void OnLeaderChanged()
    {
        CancellationTokenSource previous = Interlocked.Exchange(ref _leaderKnown, new CancellationTokenSource());
        // Callbacks run on the thread pool, not on DotNext's thread that raised the event.
        _ = previous.CancelAsync();
    }

    /// <summary>
    /// How long making a connection to a member (TCP connect and TLS handshake) may take: two thirds of
    /// the lower election timeout (200 ms for 300-600), so that it fails before a candidate's round ends.
    /// </summary>
    internal static TimeSpan ConnectTimeoutFor((int Lower, int Upper) electionTimeout) =>
        TimeSpan.FromMilliseconds(Math.Max(1, electionTimeout.Lower * 2 / 3));

    /// <summary>Runs a request on this replica as the leader; null when it turns out not to lead.</summary>
    private async Task<byte[]?> TryLocallyAsync(byte kind, byte[] body, CancellationToken token)
    {
        try
        {
            switch (kind)
            {
                case ForwardFrame.Write:
                    var applied = new TaskCompletionSource<StateWriteResult>(TaskCreationOptions.RunContinuationsAsynchronously);
                    await _cluster.ReplicateAsync((ReadOnlyMemory<byte>)body, applied, token).ConfigureAwait(false);

                    return EncodeWriteResult(await applied.Task.WaitAsync(token).ConfigureAwait(false));
                case ForwardFrame.Read:
                    await _cluster.ApplyReadBarrierAsync(token).ConfigureAwait(false);
                    return ReadLocally(body);
                case ForwardFrame.Join:
                case ForwardFrame.Leave:
                    if (!IPEndPoint.TryParse(Encoding.UTF8.GetString(body), out IPEndPoint? member))
                    {
                        throw new StrongStoreUnavailableException("a membership request named no endpoint");
                    }

                    bool known = _cluster.Members.Any(m => m.EndPoint.Equals(member));
                    if (kind == ForwardFrame.Join)
                    {
                        // A replica of another node is reached through a relay on this one.
                        _relay?.Ensure(member);
                    }

                    bool done = kind == ForwardFrame.Join
                        ? known || await _cluster.AddMemberAsync(member, token).ConfigureAwait(false)
                        : !known || await _cluster.RemoveMemberAsync(member, token).ConfigureAwait(false);
                    return [done ? (byte)1 : (byte)0];
                default:
                    throw new StrongStoreUnavailableException($"unknown request kind {kind}");
            }
        }
        catch (Exception e) when (e is NotLeaderException or LeaderOperationException || (e is InvalidOperationException && !IsLeader))
        {
            return null;
        }
        catch (QuorumUnreachableException e)
        {
            throw new StrongStoreUnavailableException($"strong store {_options.Name}: no quorum ({e.Message})", e);
        }
    }

    private byte[] ReadLocally(byte[] body)
    {
        using var reader = new BinaryReader(new MemoryStream(body), Encoding.UTF8);
        int count = reader.ReadInt32();
        if (count < 0 || count > body.Length)
        {
            throw new InvalidDataException("bad key count");
        }

        long now = _options.Time.GetUtcNow().ToUnixTimeMilliseconds();
        using var answer = new MemoryStream();
        using (var writer = new BinaryWriter(answer, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(count);
            for (int i = 0; i < count; i++)
            {
                StateValue? value = _machine.State.Get(reader.ReadString(), now);
                writer.Write(value is not null);
                if (value is not null)
                {
                    writer.Write(value.Value.Length);
                    writer.Write(value.Value);
                    writer.Write(value.ETag);
                    writer.Write(value.ExpiresAt?.ToUnixTimeMilliseconds() ?? 0);
                }
            }
        }

        return answer.ToArray();
    }

    private static byte[] EncodeWriteResult(StateWriteResult result)
    {
        byte[] key = Encoding.UTF8.GetBytes(result.Key ?? string.Empty);
        return [(byte)result.Status, .. key];
    }

    private static StateWriteResult DecodeWriteResult(byte[] answer)
    {
        if (answer.Length == 0 || answer[0] > (byte)StateWriteStatus.StoreFull)
        {
            throw new StrongStoreUnavailableException("the leader sent a malformed write result");
        }

        return new StateWriteResult((StateWriteStatus)answer[0], answer.Length > 1 ? Encoding.UTF8.GetString(answer.AsSpan(1)) : null);
    }

    /// <summary>Asks the leader, through any running replica, to add this replica; retries until it is a member.</summary>
    private async Task AnnounceAsync(EndPoint self, List<IPEndPoint> peers, System.Collections.Concurrent.ConcurrentDictionary<IPEndPoint, string> tunnelNames, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        deadline.CancelAfter(_options.JoinTimeout);
        byte[] body = Encoding.UTF8.GetBytes(self.ToString()!);
        try
        {
            while (true)
            {
                foreach (IPEndPoint peer in peers)
                {
                    if (await TrySendAsync(peer, ForwardFrame.Join, body, deadline.Token).ConfigureAwait(false) is (ForwardFrame.Ok, [1]))
                    {
                        return;
                    }
                }

                // Replicas of other nodes (asked again each round: the routes change): whichever
                // takes the request has the leader add this replica.
                foreach (ReplicaNode node in peers.Count == 0 && _relay is not null ? _relay.Mesh.RemoteNodes() : [])
                {
                    tunnelNames[node.TunnelEndPoint] = node.ServerName;
                    if (await TrySendAsync(node.TunnelEndPoint, ForwardFrame.JoinVia, body, deadline.Token).ConfigureAwait(false) is (ForwardFrame.Ok, [1]))
                    {
                        return;
                    }
                }

                await Task.Delay(100, deadline.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new StrongStoreUnavailableException(
                $"strong store {_options.Name}: no leader added this replica within {_options.JoinTimeout.TotalSeconds:0} s (running replicas: {string.Join(", ", peers.Select(static p => p.ToString()).Concat(tunnelNames.Values))})");
        }
    }

    /// <summary>One request over a pooled mutual-TLS connection; null when the peer could not be reached or hung up.</summary>
    private Task<(byte Kind, byte[] Body)?> TrySendAsync(IPEndPoint peer, byte kind, byte[] body, CancellationToken token) =>
        _link.TrySendAsync(peer, kind, body, token);

    /// <summary>Answers a request another replica forwarded: only the leader serves them.</summary>
    private async Task<(byte Kind, byte[] Body)?> HandleAsync(byte kind, byte[] body, CancellationToken stopping)
    {
        if (kind == ForwardFrame.JoinVia)
        {
            return await JoinForAsync(body, stopping).ConfigureAwait(false);
        }

        if (!IsLeader)
        {
            return (ForwardFrame.NotLeader, []);
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        deadline.CancelAfter(_options.OperationTimeout);
        try
        {
            byte[]? local = await TryLocallyAsync(kind, body, deadline.Token).ConfigureAwait(false);
            return local is not null ? (ForwardFrame.Ok, local)
                // A write this replica proposed may be in its log and committed by the next leader:
                // answering "not the leader" would have the follower send it there again.
                : kind == ForwardFrame.Write ? (ForwardFrame.Unavailable, Encoding.UTF8.GetBytes(WriteOutcomeUnknown("the leader").Message))
                : (ForwardFrame.NotLeader, []);
        }
        catch (StrongStoreUnavailableException e)
        {
            return (ForwardFrame.Unavailable, Encoding.UTF8.GetBytes(e.Message));
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            return (ForwardFrame.Unavailable, Encoding.UTF8.GetBytes(
                $"strong store {_options.Name}: the leader could not commit within {_options.OperationTimeout.TotalSeconds:0.#} s (no quorum)"));
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            return (ForwardFrame.Unavailable, Encoding.UTF8.GetBytes("malformed forwarded request: " + e.Message));
        }
    }

    /// <summary>Has the leader (this replica or another) add a replica of another node that asked this one.</summary>
    private async Task<(byte Kind, byte[] Body)?> JoinForAsync(byte[] body, CancellationToken stopping)
    {
        try
        {
            return (ForwardFrame.Ok, await ExecuteAsync(ForwardFrame.Join, body, stopping).ConfigureAwait(false));
        }
        catch (StrongStoreUnavailableException e)
        {
            return (ForwardFrame.Unavailable, Encoding.UTF8.GetBytes(e.Message));
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            return (ForwardFrame.Unavailable, Encoding.UTF8.GetBytes($"strong store {_options.Name}: the join was cut short"));
        }
    }

    /// <summary>
    /// Keeps a relay to every member of another node (a member added by another leader, or known from
    /// the log): DotNext dials member endpoints as they are. Also takes over a relay another sidecar
    /// of this node held, once that one is gone.
    /// </summary>
    private async Task KeepRelaysAsync()
    {
        CancellationToken stopping = _stopping.Token;
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                foreach (var member in _cluster.Members)
                {
                    if (member.EndPoint is IPEndPoint endpoint)
                    {
                        _relay!.Ensure(endpoint);
                    }
                }

                await Task.Delay(200, stopping).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
        catch (Exception e)
        {
            _logger.LogWarning("strong store {Store}: relays to other nodes' replicas no longer kept: {Error}", _options.Name, e.Message);
        }
    }

    private async Task StopAsync(bool leave)
    {
        bool removed = false;
        if (leave && _cluster.Members.Count > 1)
        {
            try
            {
                using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(3));
                if (IsLeader)
                {
                    await ((DotNext.Net.Cluster.ICluster)_cluster).ResignAsync(bound.Token).ConfigureAwait(false);
                }

                byte[] answer = await ExecuteAsync(ForwardFrame.Leave, Encoding.UTF8.GetBytes(RaftEndPoint.ToString()), bound.Token).ConfigureAwait(false);
                removed = answer is [1];
            }
            catch (Exception e) when (e is StrongStoreUnavailableException or OperationCanceledException)
            {
                _logger.LogWarning("strong store {Store}: could not leave the group: {Error}", _options.Name, e.Message);
            }
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await _link.DisposeAsync().ConfigureAwait(false);

        await _cluster.StopAsync(CancellationToken.None).ConfigureAwait(false);
        await _cluster.DisposeAsync().ConfigureAwait(false);
        foreach (IDisposable served in _served)
        {
            served.Dispose();
        }

        if (_relay is not null)
        {
            await _relay.DisposeAsync().ConfigureAwait(false);
        }

        await _log.DisposeAsync().ConfigureAwait(false);
        await _machine.DisposeAsync().ConfigureAwait(false);
        if (removed)
        {
            _slot.Delete();
        }

        _slot.Dispose();
        _stopping.Dispose();
    }

    private static int FreePort(IPAddress address)
    {
        using var probe = new TcpListener(address, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
