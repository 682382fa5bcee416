using System.Text;
using Beemesh.Identity.Attestation;
using Beemesh.Identity.Authority;
using Beemesh.Identity.WorkloadApi;
using Beemesh.Sidecar.State;
using Beemesh.Sidecar.State.Eventual;
using Beemesh.Sidecar.State.Strong;
using Beemesh.Sidecar.Telemetry;
using Beemesh.Spiffe;
using Beemesh.Spiffe.WorkloadApi;
using Beemesh.Spiffe.X509;
using Beemesh.State.Api;
using Beemesh.State.Eventual;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>
/// Eventual stores kept on disk (<see cref="EventualJournal"/>): a replica restarted, or the next
/// replica after the last one stopped, finds the data; a torn or corrupt tail is dropped and counted.
/// Timers run on a fake clock that only the test advances.
/// </summary>
public sealed class EventualPersistenceTests : IAsyncLifetime
{
    private readonly TempDirectory _dir = new();
    private readonly List<IAsyncDisposable> _owned = [];
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private CertificateAuthority _authority = null!;
    private StrongStoreContext _kv = null!;

    public async Task InitializeAsync()
    {
        _authority = CertificateAuthority.LoadOrCreate(_dir.File("ca"));
        SpiffeId id = SpiffeId.FromParts(_authority.TrustDomain, "/ns/default/sa/kv");
        var workloads = new RegisteredWorkloads();
        Assert.True(workloads.Register(Environment.ProcessId, id));
        WorkloadApiServer server = await WorkloadApiServer.StartAsync(new WorkloadApiServerOptions { SocketPath = _dir.File("kv.sock") }, _authority, workloads);
        _owned.Add(server);
        X509Source source = await X509Source.StartAsync(new WorkloadApiClient(_dir.File("kv.sock")));
        _owned.Add(source);
        _kv = new StrongStoreContext(_dir.File("state"), source, id);
    }

    public async Task DisposeAsync()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }

        _authority.Dispose();
        _dir.Dispose();
    }

    private string StoreDirectory => EventualReplica.DirectoryOf(_kv, "statestore");

    private (EventualReplica Replica, EventualStateStore Api, EventualStateCounters Counters) Start(ulong id, EventualReplicationOptions? options = null)
    {
        var counters = new EventualStateCounters();
        EventualReplica replica = EventualReplica.Start(
            new EventualStore("statestore", id, _time), _kv, options ?? new EventualReplicationOptions(), counters, NullLoggerFactory.Instance, _time);
        return (replica, new EventualStateStore(replica.Replicator.Store, replica.Replicator, replica.Journal), counters);
    }

    private static async Task WriteAsync(EventualStateStore store, params StateOperation[] operations) =>
        Assert.Equal(StateWriteStatus.Applied, (await store.WriteAsync(operations, CancellationToken.None)).Status);

    private static StateOperation Save(string key, string value, TimeSpan? ttl = null) =>
        StateOperation.Upsert("kv||" + key, Encoding.UTF8.GetBytes(value)) with { TimeToLive = ttl };

    private static string? Read(EventualStateStore store, string key) =>
        store.Store.Get("kv||" + key) is StateValue v ? Encoding.UTF8.GetString(v.Value) : null;

    private List<string> Slots() => Directory.EnumerateDirectories(StoreDirectory, "slot-*").Order(StringComparer.Ordinal).ToList();

    [Fact]
    public async Task TheOnlyReplicaRestartedFindsItsDataInFilesOnlyTheSidecarMayRead()
    {
        var (a, apiA, _) = Start(1);
        await WriteAsync(apiA, Save("k", "v1"));
        await WriteAsync(apiA, Save("k", "v2"), Save("other", "o"));
        string etag = apiA.Store.Get("kv||k")!.ETag;
        await a.DisposeAsync();
        string slot = Assert.Single(Slots());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(slot));
        Assert.All(
            Directory.EnumerateFiles(slot).Where(static f => Path.GetFileName(f).StartsWith("log-", StringComparison.Ordinal) || Path.GetFileName(f).StartsWith("snapshot-", StringComparison.Ordinal)),
            static f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));

        var (b, apiB, counters) = Start(2);
        _owned.Add(b);
        Assert.Equal("v2", Read(apiB, "k"));
        Assert.Equal("o", Read(apiB, "other"));
        Assert.Equal(etag, apiB.Store.Get("kv||k")!.ETag);
        Assert.Equal(0, counters.JournalDroppedRecords);

        // A later write orders after the loaded one: the clock took the loaded stamps in.
        await WriteAsync(apiB, Save("k", "v3"));
        Assert.True(HybridTimestamp.TryParseETag(apiB.Store.Get("kv||k")!.ETag, out HybridTimestamp later));
        Assert.True(HybridTimestamp.TryParseETag(etag, out HybridTimestamp earlier));
        Assert.True(later > earlier);
    }

    [Fact]
    public async Task ATombstoneAndATimeToLiveSurviveARestart()
    {
        var (a, apiA, _) = Start(1);
        await WriteAsync(apiA, Save("gone", "x"), Save("short", "s", TimeSpan.FromMinutes(10)), Save("kept", "k"));
        await WriteAsync(apiA, StateOperation.Delete("kv||gone"));
        await a.DisposeAsync();

        var (b, apiB, _) = Start(2);
        _owned.Add(b);
        Assert.Null(Read(apiB, "gone"));
        StateEntry tombstone = Assert.Single(apiB.Store.Snapshot(), static e => e.Key == "kv||gone");
        Assert.True(tombstone.IsTombstone);
        Assert.Equal("s", Read(apiB, "short"));
        Assert.Equal(_time.GetUtcNow().AddMinutes(10).ToUnixTimeMilliseconds(), apiB.Store.Get("kv||short")!.ExpiresAt!.Value.ToUnixTimeMilliseconds());
        _time.Advance(TimeSpan.FromMinutes(10));
        Assert.Null(Read(apiB, "short"));
        Assert.Equal("k", Read(apiB, "kept"));
    }

    [Fact]
    public async Task ATornOrCorruptTailIsDroppedAndCountedAndWhatCameBeforeLoads()
    {
        var (a, apiA, _) = Start(1);
        await WriteAsync(apiA, Save("one", "1"));
        await WriteAsync(apiA, Save("two", "2"));
        long afterTwo = a.Journal.LogBytes;
        await WriteAsync(apiA, Save("three", "3"));
        await WriteAsync(apiA, Save("four", "4"));
        string log = EventualJournal.LogPath(a.Journal.Directory, a.Journal.Generation);
        await a.DisposeAsync();

        // Record three fails its checksum (a byte of its payload flipped), record four is cut short.
        byte[] bytes = await File.ReadAllBytesAsync(log);
        bytes[afterTwo + 12] ^= 0x40;
        await File.WriteAllBytesAsync(log, bytes[..^3]);

        var (b, apiB, counters) = Start(2);
        _owned.Add(b);
        Assert.Equal("1", Read(apiB, "one"));
        Assert.Equal("2", Read(apiB, "two"));
        Assert.Null(Read(apiB, "three"));
        Assert.Null(Read(apiB, "four"));
        Assert.Equal(1, counters.JournalDroppedRecords);
        Assert.Equal(bytes.Length - 3 - afterTwo, counters.JournalDroppedBytes);

        // What was loaded is in a new snapshot: the bad log is gone and the store serves on.
        Assert.False(File.Exists(log));
        await WriteAsync(apiB, Save("five", "5"));
        Assert.Equal("5", Read(apiB, "five"));
    }

    [Fact]
    public async Task ACorruptSnapshotIsDroppedAndTheOlderSnapshotAndLogsLoad()
    {
        var (a, apiA, _) = Start(1);
        await WriteAsync(apiA, Save("one", "1"));
        string directory = a.Journal.Directory;
        string firstLog = EventualJournal.LogPath(directory, a.Journal.Generation);
        byte[] log = await File.ReadAllBytesAsync(firstLog);
        await a.Journal.CompactAsync();
        long generation = a.Journal.Generation;
        await a.DisposeAsync();

        // As after a crash between a compaction's rename and its deletes: the log before it is still
        // there, and the new snapshot (here) loses its trailer. The snapshot is not used; the logs are.
        Assert.False(File.Exists(firstLog));
        await File.WriteAllBytesAsync(firstLog, log);
        string snapshot = EventualJournal.SnapshotPath(directory, generation);
        byte[] whole = await File.ReadAllBytesAsync(snapshot);
        await File.WriteAllBytesAsync(snapshot, whole[..^16]);
        var contents = EventualJournal.ReadFile(snapshot, snapshot: true, 1 << 20);
        Assert.False(contents.Complete);
        Assert.Single(contents.Entries);

        var (b, apiB, counters) = Start(2);
        _owned.Add(b);
        Assert.Equal("1", Read(apiB, "one"));
        Assert.Equal(1 + contents.Records, counters.JournalDroppedRecords);
    }

    [Fact]
    public async Task TheLogIsCompactedIntoASnapshotAndTheOldFilesGo()
    {
        var options = new EventualReplicationOptions { JournalCompactBytes = 4096 };
        var (a, apiA, counters) = Start(1, options);
        long first = a.Journal.Generation;
        for (int i = 0; i < 200; i++)
        {
            await WriteAsync(apiA, Save("k" + (i % 50), new string('v', 100) + i));
        }

        await a.Journal.LastCompaction;
        await a.Journal.CompactAsync();
        Assert.True(counters.JournalCompactions >= 2);
        Assert.True(a.Journal.Generation > first);
        Assert.DoesNotContain(
            Directory.EnumerateFiles(a.Journal.Directory),
            f => f.EndsWith(first.ToString("x16", System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        await a.DisposeAsync();

        var (b, apiB, _) = Start(2, options);
        _owned.Add(b);
        for (int i = 150; i < 200; i++)
        {
            Assert.Equal(new string('v', 100) + i, Read(apiB, "k" + (i % 50)));
        }

        Assert.Equal(50, apiB.Store.Count);
    }

    [Fact]
    public async Task AReplicaStoppingBesideAnotherHandsOverAndTheLastKeepsTheData()
    {
        var (a, apiA, _) = Start(1);
        var (b, apiB, _) = Start(2);
        await WriteAsync(apiA, Save("from-a", "a"));
        await WriteAsync(apiB, Save("from-b", "b"));
        Assert.Equal(2, Slots().Count);

        // A stops while B runs: it hands its write over (never pushed) and its slot goes.
        await a.DisposeAsync();
        Assert.Equal("a", Read(apiB, "from-a"));
        Assert.Single(Slots());

        // B stops last: it keeps its slot; the next replica finds both writes there.
        await b.DisposeAsync();
        Assert.Single(Slots());
        var (c, apiC, _) = Start(3);
        _owned.Add(c);
        Assert.Equal("a", Read(apiC, "from-a"));
        Assert.Equal("b", Read(apiC, "from-b"));
    }

    [Fact]
    public async Task AReplicaStartingTakesOverEveryGoneReplicasDataAndDeletesTheirSlots()
    {
        // A killed replica leaves its slot behind: here a copy of A's slot, taken while A runs, stands for one.
        var (a, apiA, _) = Start(1);
        var (b, apiB, _) = Start(2);
        await WriteAsync(apiA, Save("from-a", "a"));
        await WriteAsync(apiB, Save("from-b", "b"));
        string slotA = a.Journal.Directory;
        await b.DisposeAsync();
        Assert.Equal("b", Read(apiA, "from-b"));

        string copy = Path.Combine(StoreDirectory, "slot-copy");
        Directory.CreateDirectory(copy);
        foreach (string file in Directory.EnumerateFiles(slotA).Where(static f => !f.EndsWith("owner.lock", StringComparison.Ordinal)))
        {
            File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        }

        await a.DisposeAsync();
        Assert.Equal(2, Slots().Count);

        var (c, apiC, _) = Start(3);
        _owned.Add(c);
        Assert.Equal("a", Read(apiC, "from-a"));
        Assert.Equal("b", Read(apiC, "from-b"));
        Assert.Single(Slots());
    }

    [Fact]
    public async Task AWriteTheJournalCannotTakeFailsWithAClearError()
    {
        var (a, apiA, counters) = Start(1, new EventualReplicationOptions { JournalSyncInterval = TimeSpan.Zero });
        _owned.Add(a);
        await WriteAsync(apiA, Save("one", "1"));
        Assert.Equal(2, counters.JournalSyncs); // the snapshot at start, then the write before it was acknowledged

        // The journal closed (as a failed disk leaves it): the API answers 500 with the store named.
        await a.Journal.DisposeAsync();
        StateApiError? error = await StateApiCore.WriteAsync(apiA, [Save("two", "2")], StateApiCore.WriteKind.Save, CancellationToken.None);
        Assert.NotNull(error);
        Assert.Equal(500, error.HttpStatus);
        Assert.Equal("ERR_STATE_SAVE", error.ErrorCode);
        Assert.Contains("statestore", error.Message, StringComparison.Ordinal);
    }
}
