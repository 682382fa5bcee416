using System.Net;
using Beemesh.Sidecar.State.Replicas;
using Beemesh.Sidecar.Telemetry;
using Beemesh.State.Eventual;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.State.Eventual;

/// <summary>
/// Replicates one eventual store among the replicas of a workload: pushes local writes to every
/// peer (batched for <see cref="EventualReplicationOptions.PushDelay"/>), and runs an anti-entropy
/// round every <see cref="EventualReplicationOptions.AntiEntropyInterval"/> that repairs whatever a
/// push missed. The decisions are the store's (sans-IO: <see cref="EventualStore.Summarize"/>,
/// <see cref="EventualStore.Reconcile"/>, <see cref="EventualStore.Merge(IEnumerable{StateEntry})"/>); this class carries
/// them over an <see cref="IReplicaTransport"/> to the peers an <see cref="IReplicaDiscovery"/> names.
/// </summary>
/// <remarks>
/// <para>A round, started by replica A with each peer B:</para>
/// <code>
/// A --Digest(bucket digests)----------------------&gt; B
/// A &lt;-Summary(differing buckets, (key, stamp)s)----- B      nothing differs: done
/// A --Entries(A's newer entries, keys A wants)-----&gt; B      B merges
/// A &lt;-Entries(the wanted entries)------------------- B      A merges
/// </code>
/// <para>A push is an Entries frame with no wants, answered by an empty one. Writes never wait for
/// a push; a push that fails is not retried, the next round repairs it. Entries dead for longer than
/// the tombstone grace period neither travel nor are taken in. Frames are bounded
/// (<see cref="EventualReplicationOptions"/>); a malformed one is refused, counted, and its
/// connection closed.</para>
/// </remarks>
public sealed class EventualReplicator : IAsyncDisposable
{
    private readonly EventualStore _store;
    private readonly IReplicaDiscovery _discovery;
    private readonly IReplicaTransport _transport;
    private readonly EventualReplicationOptions _options;
    private readonly EventualStateCounters _counters;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _pendingLock = new();
    private readonly SemaphoreSlim _round = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private List<StateEntry> _pending = [];
    private ITimer? _roundTimer;
    private ITimer? _pushTimer;
    private bool _pushScheduled;
    private int _summaryStart;
    private Task _lastPush = Task.CompletedTask;
    private Task _lastRound = Task.CompletedTask;

    /// <summary>Creates the replicator of <paramref name="store"/>; <see cref="Start"/> starts its timers.</summary>
    public EventualReplicator(
        EventualStore store, IReplicaDiscovery discovery, IReplicaTransport transport, EventualReplicationOptions options,
        EventualStateCounters counters, ILogger logger, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(discovery);
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(counters);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(time);
        if (options.AntiEntropyInterval <= TimeSpan.Zero || options.AntiEntropyInterval >= store.Options.TombstoneGrace)
        {
            throw new ArgumentException(
                $"the anti-entropy interval ({options.AntiEntropyInterval}) must be positive and shorter than the tombstone grace period ({store.Options.TombstoneGrace})",
                nameof(options));
        }

        _store = store;
        _discovery = discovery;
        _transport = transport;
        _options = options;
        _counters = counters;
        _logger = logger;
        _time = time;
    }

    /// <summary>The replica.</summary>
    public EventualStore Store => _store;

    /// <summary>Where entries merged from peers are written before the answer, or null for a replica kept in memory only.</summary>
    public EventualJournal? Journal { get; init; }

    /// <summary>The push the timer started last (for tests driving the timer with a fake clock).</summary>
    internal Task LastTimedPush => _lastPush;

    /// <summary>The round the timer started last (for tests driving the timer with a fake clock).</summary>
    internal Task LastTimedRound => _lastRound;

    /// <summary>Starts the anti-entropy timer (the first round one interval from now) and pushes of later writes.</summary>
    public void Start()
    {
        _pushTimer = _time.CreateTimer(static s => ((EventualReplicator)s!).OnPushTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _roundTimer = _time.CreateTimer(static s => ((EventualReplicator)s!).OnRoundTimer(), this, _options.AntiEntropyInterval, _options.AntiEntropyInterval);
    }

    /// <summary>
    /// Takes local writes (as the store applied them) to push to the peers: after
    /// <see cref="EventualReplicationOptions.PushDelay"/> once started, else at the next <see cref="FlushAsync"/>.
    /// Returns at once.
    /// </summary>
    public void Written(IReadOnlyCollection<StateEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (entries.Count == 0)
        {
            return;
        }

        bool schedule;
        lock (_pendingLock)
        {
            _pending.AddRange(entries);
            schedule = !_pushScheduled && _pushTimer is not null;
            _pushScheduled |= schedule;
        }

        if (schedule)
        {
            try
            {
                _pushTimer!.Change(_options.PushDelay, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // stopping
            }
        }
    }

    /// <summary>Pushes the writes gathered so far to every peer, in batches within the frame limits.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        List<StateEntry> batch;
        lock (_pendingLock)
        {
            batch = _pending;
            _pending = [];
            _pushScheduled = false;
        }

        if (batch.Count == 0)
        {
            return;
        }

        IReadOnlyList<IPEndPoint> peers = _discovery.FindPeers();
        foreach (List<StateEntry> chunk in Chunks(batch))
        {
            byte[] body = EventualWire.EncodeEntries(chunk, []);
            await Task.WhenAll(peers.Select(peer => PushAsync(peer, body, chunk.Count, cancellationToken))).ConfigureAwait(false);
        }
    }

    /// <summary>One anti-entropy round with every peer, one peer at a time; waits for a round already running.</summary>
    public async Task RunRoundAsync(CancellationToken cancellationToken)
    {
        await _round.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (IPEndPoint peer in _discovery.FindPeers())
            {
                await ExchangeAsync(peer, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _round.Release();
        }
    }

    /// <summary>
    /// Before this replica stops: pushes what is pending and runs exchanges with <paramref name="peers"/>
    /// until one of them reports holding everything this replica holds (its digest equal), at most
    /// <paramref name="maxRounds"/> rounds each. True when a peer holds it all; then this replica's
    /// data is of no further use. Call after <see cref="DisposeAsync"/> (no timer runs).
    /// </summary>
    public async Task<bool> HandOverAsync(IReadOnlyList<IPEndPoint> peers, int maxRounds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(peers);
        List<StateEntry> batch;
        lock (_pendingLock)
        {
            batch = _pending;
            _pending = [];
        }

        foreach (IPEndPoint peer in peers)
        {
            foreach (List<StateEntry> chunk in Chunks(batch))
            {
                await SendAsync(peer, EventualFrameKind.Entries, EventualWire.EncodeEntries(chunk, []), cancellationToken).ConfigureAwait(false);
            }

            for (int round = 0; round < maxRounds; round++)
            {
                bool? equal = await ExchangeAsync(peer, cancellationToken).ConfigureAwait(false);
                if (equal is null)
                {
                    break;
                }

                if (equal.Value)
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>Answers a peer's request; null (refused and counted by the link) for a malformed one.</summary>
    public Task<(byte Kind, byte[] Body)?> HandleAsync(byte kind, byte[] body, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        (byte Kind, byte[] Body)? answer = null;
        string? error;
        switch ((EventualFrameKind)kind)
        {
            case EventualFrameKind.Digest:
                if (EventualWire.TryDecodeDigest(body, out ulong[] digest, out error))
                {
                    // Each answer starts at another bucket, so a difference larger than one frame is
                    // worked through bucket by bucket rather than the same buckets every round.
                    int start = Interlocked.Add(ref _summaryStart, 97);
                    BucketSummary summary = _store.Summarize(digest, start, _options.MaxEntriesPerFrame, _options.MaxBatchBytes);
                    answer = ((byte)EventualFrameKind.Summary, EventualWire.EncodeSummary(summary));
                }

                break;
            case EventualFrameKind.Entries:
                if (EventualWire.TryDecodeEntries(body, _options.MaxEntriesPerFrame, out List<StateEntry> entries, out List<string> want, out error))
                {
                    Take(entries);
                    List<StateEntry> wanted = want.Count == 0 ? [] : _store.EntriesFor(want, _options.MaxEntriesPerFrame, _options.MaxBatchBytes);
                    _counters.CountPushed(wanted.Count);
                    answer = ((byte)EventualFrameKind.Entries, EventualWire.EncodeEntries(wanted, []));
                }

                break;
            default:
                error = $"unknown frame kind {kind}";
                break;
        }

        if (answer is null)
        {
            _logger.LogWarning("eventual store {Store}: refused a peer's frame and closed its connection: {Error}", _store.Name, error);
        }

        return Task.FromResult(answer);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        if (_roundTimer is not null)
        {
            await _roundTimer.DisposeAsync().ConfigureAwait(false);
        }

        if (_pushTimer is not null)
        {
            await _pushTimer.DisposeAsync().ConfigureAwait(false);
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_lastPush, _lastRound).ConfigureAwait(false);
        _stopping.Dispose();
    }

    private void OnPushTimer()
    {
        if (!_stopping.IsCancellationRequested)
        {
            _lastPush = Quietly(FlushAsync(_stopping.Token));
        }
    }

    private void OnRoundTimer()
    {
        // A round still running (a slow peer) is not queued behind: this tick is skipped.
        if (!_stopping.IsCancellationRequested && _lastRound.IsCompleted)
        {
            _lastRound = Quietly(RunRoundAsync(_stopping.Token));
        }
    }

    private async Task Quietly(Task work)
    {
        try
        {
            await work.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        catch (ObjectDisposedException) when (_stopping.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            _logger.LogError(e, "eventual store {Store}: replication failed", _store.Name);
        }
    }

    private async Task PushAsync(IPEndPoint peer, byte[] body, int count, CancellationToken cancellationToken)
    {
        if (await SendAsync(peer, EventualFrameKind.Entries, body, cancellationToken).ConfigureAwait(false) is not null)
        {
            _counters.CountPushed(count);
        }
    }

    /// <summary>One exchange with <paramref name="peer"/>: null when it failed, else whether the two replicas were equal already.</summary>
    private async Task<bool?> ExchangeAsync(IPEndPoint peer, CancellationToken cancellationToken)
    {
        _counters.CountDigestRound();
        byte[]? answer = await SendAsync(peer, EventualFrameKind.Digest, EventualWire.EncodeDigest(_store.BucketDigest()), cancellationToken).ConfigureAwait(false);
        if (answer is null)
        {
            return null;
        }

        if (!EventualWire.TryDecodeSummary(answer, _options.MaxEntriesPerFrame, out BucketSummary summary, out string? error))
        {
            Refuse(peer, error);
            return null;
        }

        if (summary.Buckets.Count == 0)
        {
            return true;
        }

        Reconciliation plan = _store.Reconcile(summary, _options.MaxEntriesPerFrame, _options.MaxBatchBytes);
        if (plan.IsEmpty)
        {
            return false;
        }

        answer = await SendAsync(peer, EventualFrameKind.Entries, EventualWire.EncodeEntries(plan.Send, plan.Want), cancellationToken).ConfigureAwait(false);
        if (answer is null)
        {
            return null;
        }

        _counters.CountPushed(plan.Send.Count);
        if (!EventualWire.TryDecodeEntries(answer, _options.MaxEntriesPerFrame, out List<StateEntry> entries, out List<string> want, out error) || want.Count != 0)
        {
            Refuse(peer, error ?? "an answer wanted keys back");
            return null;
        }

        Take(entries);
        return false;
    }

    /// <summary>Sends one request; the answer's body when it is of the kind the request calls for, else null (counted).</summary>
    private async Task<byte[]?> SendAsync(IPEndPoint peer, EventualFrameKind kind, byte[] body, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.ExchangeTimeout);
        (byte Kind, byte[] Body)? answer;
        try
        {
            answer = await _transport.TrySendAsync(peer, (byte)kind, body, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            answer = null;
        }

        EventualFrameKind expected = kind == EventualFrameKind.Digest ? EventualFrameKind.Summary : EventualFrameKind.Entries;
        switch (answer)
        {
            case null:
                _counters.CountFailedExchange();
                return null;
            case var (answerKind, answerBody) when answerKind == (byte)expected:
                return answerBody;
            default:
                Refuse(peer, $"answer of kind {answer.Value.Kind} to a {kind} request");
                return null;
        }
    }

    private void Take(List<StateEntry> entries)
    {
        entries.RemoveAll(_store.IsGarbage);
        List<StateEntry>? changed = Journal is null ? null : [];
        int merged = entries.Count == 0 ? 0 : _store.Merge(entries, changed);
        _counters.CountReceived(entries.Count, merged);
        if (changed is { Count: > 0 })
        {
            try
            {
                Journal!.Append(changed);
            }
            catch (EventualJournalException e)
            {
                // Held in memory and served; the peers still have it and repair this replica's disk
                // copy only if it restarts while they run.
                _logger.LogError("eventual store {Store}: {Error}", _store.Name, e.Message);
            }
        }
    }

    private void Refuse(IPEndPoint peer, string? error)
    {
        _counters.CountRefusedFrame();
        _logger.LogWarning("eventual store {Store}: refused an answer from {Peer}: {Error}", _store.Name, peer, error);
    }

    private IEnumerable<List<StateEntry>> Chunks(List<StateEntry> entries)
    {
        var chunk = new List<StateEntry>();
        long bytes = 0;
        foreach (StateEntry entry in entries)
        {
            long size = EventualStore.WireSize(entry);
            if (chunk.Count > 0 && (chunk.Count == _options.MaxEntriesPerFrame || bytes + size > _options.MaxBatchBytes))
            {
                yield return chunk;
                chunk = [];
                bytes = 0;
            }

            chunk.Add(entry);
            bytes += size;
        }

        if (chunk.Count > 0)
        {
            yield return chunk;
        }
    }
}
