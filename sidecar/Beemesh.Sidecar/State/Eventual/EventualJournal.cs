using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Runtime.InteropServices;
using Beemesh.Sidecar.Telemetry;
using Beemesh.State.Eventual;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.State.Eventual;

/// <summary>
/// Keeps one eventual store replica on disk, in its slot's directory under the agent's state
/// directory, so the store's data outlives its last replica: an append-only log of checksummed
/// records (one per applied write or merged batch) and a snapshot the log is compacted into.
/// </summary>
/// <remarks>
/// <para>Files: <c>log-GEN</c> and <c>snapshot-GEN</c> (GEN 16 hex digits), each an 8-byte magic
/// then records <c>[u32 length][u32 CRC-32C of length and payload][payload]</c>, the payload the
/// entries in the replication wire form. A snapshot ends with a trailer record (the length's top
/// bit set, the payload the entry count); <c>snapshot-G</c> holds everything the logs before G
/// held. Loading takes the newest snapshot that checks out whole and the logs from its generation
/// on; a record cut short, failing its checksum or undecodable ends its file: it and the rest of
/// the file are dropped, counted and logged, and what came before loads. Since every entry is a
/// last-writer-wins register, records apply in any order and more than once with the same result.</para>
/// <para>Compaction: when the log passes <see cref="EventualReplicationOptions.JournalCompactBytes"/>
/// (and the store's size), new appends go to a new log, the store is written to
/// <c>snapshot-G.tmp</c>, flushed to the disk, renamed, the directory flushed, and the older files
/// deleted. A crash at any point leaves a loadable set.</para>
/// <para>Durability: a write is in the log (the kernel's page cache) before it is acknowledged, so
/// it survives the sidecar or the agent dying; the log is flushed to the disk every
/// <see cref="EventualReplicationOptions.JournalSyncInterval"/> (default 1 s), so a power failure
/// may lose the writes acknowledged in the last interval; an interval of zero flushes each write
/// before it is acknowledged.</para>
/// <para>Files are created 0600 in directories created 0700, owned by the sidecar; the paths come
/// from the workload's identity (namespace, name) and the store name, never from a request.</para>
/// </remarks>
public sealed class EventualJournal : IAsyncDisposable
{
    private const int HeaderBytes = 8;
    private const int RecordHeaderBytes = 8;
    private const uint TrailerFlag = 0x8000_0000;
    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode FileMode600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly string _directory;
    private readonly EventualStore _store;
    private readonly EventualReplicationOptions _options;
    private readonly EventualStateCounters _counters;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private FileStream _log;
    private long _generation;
    private long _logBytes;
    private bool _dirty;
    private bool _failed;
    private bool _disposed;
    private ITimer? _syncTimer;
    private Task _compaction = Task.CompletedTask;

    private EventualJournal(
        string directory, EventualStore store, EventualReplicationOptions options, EventualStateCounters counters, ILogger logger, long generation)
    {
        _directory = directory;
        _store = store;
        _options = options;
        _counters = counters;
        _logger = logger;
        _generation = generation;
        _log = CreateLog(generation);
        _logBytes = HeaderBytes;
    }

    /// <summary>The directory the journal's files are in.</summary>
    public string Directory => _directory;

    /// <summary>Bytes in the current log.</summary>
    public long LogBytes
    {
        get
        {
            lock (_lock)
            {
                return _logBytes;
            }
        }
    }

    /// <summary>The current generation (of the log appended to).</summary>
    public long Generation
    {
        get
        {
            lock (_lock)
            {
                return _generation;
            }
        }
    }

    /// <summary>The compaction running or run last (for tests).</summary>
    internal Task LastCompaction => _compaction;

    /// <summary>
    /// Loads the store's data from <paramref name="directory"/> and from <paramref name="adopt"/> (the
    /// directories of replicas that are gone, whose data this replica takes over) into
    /// <paramref name="store"/>, drops what is past the tombstone grace period, writes it all to a new
    /// snapshot of <paramref name="directory"/> (flushed to the disk) and starts a new log there. The
    /// caller may delete the adopted directories once this returns.
    /// </summary>
    public static EventualJournal Open(
        string directory, EventualStore store, IEnumerable<string> adopt, EventualReplicationOptions options,
        EventualStateCounters counters, ILogger logger, TimeProvider time)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(adopt);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(counters);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(time);
        System.IO.Directory.CreateDirectory(directory, DirectoryMode);
        long generation = Load(directory, store, options, counters, logger);
        foreach (string other in adopt)
        {
            Load(other, store, options, counters, logger);
        }

        store.CollectGarbage();
        var journal = new EventualJournal(directory, store, options, counters, logger, generation + 1);
        try
        {
            journal.WriteSnapshot(journal._generation, store.Snapshot());
            journal.DeleteOlderThan(journal._generation);
        }
        catch
        {
            journal._log.Dispose();
            throw;
        }

        if (options.JournalSyncInterval > TimeSpan.Zero)
        {
            journal._syncTimer = time.CreateTimer(
                static s => ((EventualJournal)s!).SyncQuietly(), journal, options.JournalSyncInterval, options.JournalSyncInterval);
        }

        logger.LogInformation(
            "eventual store {Store}: {Count} entries loaded from {Directory} (generation {Generation})", store.Name, store.Count, directory, journal._generation);
        return journal;
    }

    /// <summary>
    /// Writes <paramref name="entries"/> (as the store applied or merged them) to the log, as one
    /// record, before returning; flushes it to the disk first when the sync interval is zero.
    /// Throws <see cref="EventualJournalException"/> when the disk refuses it.
    /// </summary>
    public void Append(IReadOnlyList<StateEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (entries.Count == 0)
        {
            return;
        }

        byte[] record = Record(EventualWire.EncodeEntries(entries, []), trailer: false);
        lock (_lock)
        {
            if (_disposed)
            {
                throw new EventualJournalException($"the journal of eventual store {_store.Name} is closed");
            }

            if (_failed)
            {
                throw new EventualJournalException($"the journal of eventual store {_store.Name} failed earlier and takes no more writes");
            }

            try
            {
                _log.Write(record);
                if (_options.JournalSyncInterval <= TimeSpan.Zero)
                {
                    _log.Flush(flushToDisk: true);
                    _counters.CountJournalSync();
                }
                else
                {
                    _dirty = true;
                }

                _logBytes += record.Length;
            }
            catch (IOException e)
            {
                _counters.CountJournalFailure();
                Rewind();
                throw new EventualJournalException($"cannot write the journal of eventual store {_store.Name}: {e.Message}", e);
            }

            if (_logBytes > Math.Max(_options.JournalCompactBytes, _store.Bytes) && _compaction.IsCompleted)
            {
                _compaction = Task.Run(CompactQuietly);
            }
        }
    }

    /// <summary>Flushes what the log holds to the disk (fsync), when anything was written since the last flush.</summary>
    public void Sync()
    {
        FileStream log;
        lock (_lock)
        {
            if (!_dirty || _disposed || _failed)
            {
                return;
            }

            _dirty = false;
            log = _log;
        }

        // Outside the lock, so appends go on while the disk catches up; a compaction that
        // replaces the log flushes the old one before closing it.
        var handle = log.SafeFileHandle;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (Fsync(handle.DangerousGetHandle().ToInt32()) != 0)
            {
                throw new IOException($"fsync failed: errno {Marshal.GetLastPInvokeError()}");
            }

            _counters.CountJournalSync();
        }
        catch (ObjectDisposedException)
        {
            // replaced by a compaction, which flushed it
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>Compacts the log into a new snapshot now (waits for one running).</summary>
    public async Task CompactAsync()
    {
        Task running;
        lock (_lock)
        {
            running = _compaction;
        }

        await running.ConfigureAwait(false);
        Compact();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_syncTimer is not null)
        {
            await _syncTimer.DisposeAsync().ConfigureAwait(false);
        }

        Task compaction;
        lock (_lock)
        {
            compaction = _compaction;
        }

        await compaction.ConfigureAwait(false);
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            try
            {
                if (!_failed)
                {
                    _log.Flush(flushToDisk: true);
                    _counters.CountJournalSync();
                }
            }
            catch (IOException e)
            {
                _counters.CountJournalFailure();
                _logger.LogError("eventual store {Store}: cannot flush the journal at stop: {Error}", _store.Name, e.Message);
            }

            _log.Dispose();
        }
    }

    /// <summary>What reading one journal file found.</summary>
    /// <param name="Entries">The entries of the records that checked out.</param>
    /// <param name="Records">Records that checked out (the trailer not counted).</param>
    /// <param name="DroppedBytes">Bytes from the first bad record to the end of the file (the whole file for a bad header).</param>
    /// <param name="Complete">A snapshot's trailer was found, matching the entries read, at the end of the file.</param>
    /// <param name="Error">Why reading stopped early, or null.</param>
    internal sealed record FileContents(List<StateEntry> Entries, long Records, long DroppedBytes, bool Complete, string? Error);

    /// <summary>Reads a log or snapshot file: every record up to the first bad one.</summary>
    internal static FileContents ReadFile(string path, bool snapshot, int maxRecordBytes)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16);
        long length = stream.Length;
        var entries = new List<StateEntry>();
        byte[] header = new byte[Math.Max(HeaderBytes, RecordHeaderBytes)];
        if (stream.ReadAtLeast(header.AsSpan(0, HeaderBytes), HeaderBytes, throwOnEndOfStream: false) != HeaderBytes ||
            !header.AsSpan(0, HeaderBytes).SequenceEqual(snapshot ? SnapshotMagic : LogMagic))
        {
            return new FileContents(entries, 0, length, false, "no journal header");
        }

        long offset = HeaderBytes;
        long records = 0;
        while (offset < length)
        {
            string? error = null;
            if (stream.ReadAtLeast(header.AsSpan(0, RecordHeaderBytes), RecordHeaderBytes, throwOnEndOfStream: false) != RecordHeaderBytes)
            {
                error = "a record header is cut short";
            }

            uint word = BinaryPrimitives.ReadUInt32LittleEndian(header);
            uint crc = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
            bool trailer = (word & TrailerFlag) != 0;
            int size = (int)(word & ~TrailerFlag);
            if (error is null && (size > maxRecordBytes || size > length - offset - RecordHeaderBytes))
            {
                error = $"a record of {size} bytes is cut short or too large";
            }

            byte[] payload = error is null ? new byte[size] : [];
            if (error is null && stream.ReadAtLeast(payload, size, throwOnEndOfStream: false) != size)
            {
                error = "a record is cut short";
            }

            if (error is null && Checksum(header.AsSpan(0, 4), payload) != crc)
            {
                error = "a record fails its checksum";
            }

            if (error is null && trailer)
            {
                bool complete = snapshot && size == 8 && (long)BinaryPrimitives.ReadUInt64LittleEndian(payload) == entries.Count &&
                    offset + RecordHeaderBytes + size == length;
                return complete
                    ? new FileContents(entries, records, 0, true, null)
                    : new FileContents(entries, records, length - offset, false, "a trailer out of place or not matching the entries");
            }

            if (error is not null)
            {
                return new FileContents(entries, records, length - offset, false, error);
            }

            if (!EventualWire.TryDecodeEntries(payload, int.MaxValue, out List<StateEntry> decoded, out List<string> want, out error) || want.Count != 0)
            {
                return new FileContents(entries, records, length - offset, false, "a record does not decode: " + (error ?? "it holds wanted keys"));
            }

            entries.AddRange(decoded);
            records++;
            offset += RecordHeaderBytes + size;
        }

        return snapshot
            ? new FileContents(entries, records, 0, false, "the snapshot has no trailer")
            : new FileContents(entries, records, 0, false, null);
    }

    /// <summary>The record framing of <paramref name="payload"/>.</summary>
    internal static byte[] Record(ReadOnlySpan<byte> payload, bool trailer)
    {
        byte[] record = new byte[RecordHeaderBytes + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)payload.Length | (trailer ? TrailerFlag : 0));
        payload.CopyTo(record.AsSpan(RecordHeaderBytes));
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(4), Checksum(record.AsSpan(0, 4), payload));
        return record;
    }

    private const string LogPrefix = "log-";
    private const string SnapshotPrefix = "snapshot-";

    /// <summary>The log file of <paramref name="generation"/> in <paramref name="directory"/>.</summary>
    internal static string LogPath(string directory, long generation) => Path.Combine(directory, LogPrefix + generation.ToString("x16", CultureInfo.InvariantCulture));

    /// <summary>The snapshot file of <paramref name="generation"/> in <paramref name="directory"/>.</summary>
    internal static string SnapshotPath(string directory, long generation) => Path.Combine(directory, SnapshotPrefix + generation.ToString("x16", CultureInfo.InvariantCulture));

    private static ReadOnlySpan<byte> LogMagic => "BMEVLOG1"u8;

    private static ReadOnlySpan<byte> SnapshotMagic => "BMEVSNP1"u8;

    /// <summary>Loads a directory's newest whole snapshot and the logs from its generation on; returns the highest generation there.</summary>
    private static long Load(string directory, EventualStore store, EventualReplicationOptions options, EventualStateCounters counters, ILogger logger)
    {
        List<(long Generation, string Path)> snapshots = Files(directory, SnapshotPrefix);
        List<(long Generation, string Path)> logs = Files(directory, LogPrefix);
        long highest = Math.Max(snapshots.Count == 0 ? 0 : snapshots[^1].Generation, logs.Count == 0 ? 0 : logs[^1].Generation);
        long from = 0;
        for (int i = snapshots.Count - 1; i >= 0; i--)
        {
            FileContents contents = ReadFile(snapshots[i].Path, snapshot: true, options.MaxFrameBytes);
            if (contents.Complete)
            {
                store.Merge(contents.Entries);
                from = snapshots[i].Generation;
                break;
            }

            // A snapshot that does not check out whole is not used; the older one and the logs after it are.
            counters.CountJournalDropped(contents.Records + 1, new FileInfo(snapshots[i].Path).Length);
            logger.LogWarning("eventual store {Store}: dropped snapshot {Path}: {Error}", store.Name, snapshots[i].Path, contents.Error);
        }

        foreach ((long generation, string path) in logs)
        {
            if (generation < from)
            {
                continue;
            }

            FileContents contents = ReadFile(path, snapshot: false, options.MaxFrameBytes);
            store.Merge(contents.Entries);
            if (contents.Error is not null)
            {
                counters.CountJournalDropped(1, contents.DroppedBytes);
                logger.LogWarning(
                    "eventual store {Store}: {Path}: kept {Records} records, dropped the {Bytes} bytes after them: {Error}",
                    store.Name, path, contents.Records, contents.DroppedBytes, contents.Error);
            }
        }

        return highest;
    }

    /// <summary>Every file of a journal in <paramref name="directory"/>: its logs and snapshots, a snapshot's temporary file included.</summary>
    internal static IEnumerable<string> AllFiles(string directory) =>
        System.IO.Directory.EnumerateFiles(directory).Where(static path =>
            Path.GetFileName(path) is var name && (name.StartsWith(LogPrefix, StringComparison.Ordinal) || name.StartsWith(SnapshotPrefix, StringComparison.Ordinal)));

    private static List<(long Generation, string Path)> Files(string directory, string prefix)
    {
        var found = new List<(long, string)>();
        if (!System.IO.Directory.Exists(directory))
        {
            return found;
        }

        foreach (string path in System.IO.Directory.EnumerateFiles(directory, prefix + "*"))
        {
            string name = Path.GetFileName(path);
            if (name.Length == prefix.Length + 16 &&
                long.TryParse(name.AsSpan(prefix.Length), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out long generation) &&
                generation > 0)
            {
                found.Add((generation, path));
            }
        }

        found.Sort(static (a, b) => a.Item1.CompareTo(b.Item1));
        return found;
    }

    private static uint Checksum(ReadOnlySpan<byte> lengthWord, ReadOnlySpan<byte> payload) => ~Crc32C(Crc32C(~0u, lengthWord), payload);

    private static uint Crc32C(uint crc, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }

        foreach (byte b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }

        return crc;
    }

    private FileStream CreateLog(long generation)
    {
        var log = new FileStream(LogPath(_directory, generation), new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.Read,
            BufferSize = 0,
            UnixCreateMode = FileMode600,
        });
        log.Write(LogMagic);
        return log;
    }

    private void WriteSnapshot(long generation, List<StateEntry> entries)
    {
        string path = SnapshotPath(_directory, generation);
        string temporary = path + ".tmp";
        try
        {
            using (var file = new FileStream(temporary, new FileStreamOptions
            {
                Mode = FileMode.Create,
                Access = FileAccess.Write,
                Share = FileShare.None,
                BufferSize = 1 << 16,
                UnixCreateMode = FileMode600,
            }))
            {
                file.Write(SnapshotMagic);
                var chunk = new List<StateEntry>();
                long bytes = 0;
                foreach (StateEntry entry in entries)
                {
                    long size = EventualStore.WireSize(entry);
                    if (chunk.Count > 0 && (chunk.Count == _options.MaxEntriesPerFrame || bytes + size > _options.MaxBatchBytes))
                    {
                        file.Write(Record(EventualWire.EncodeEntries(chunk, []), trailer: false));
                        chunk.Clear();
                        bytes = 0;
                    }

                    chunk.Add(entry);
                    bytes += size;
                }

                if (chunk.Count > 0)
                {
                    file.Write(Record(EventualWire.EncodeEntries(chunk, []), trailer: false));
                }

                byte[] count = new byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(count, (ulong)entries.Count);
                file.Write(Record(count, trailer: true));
                file.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
            SyncDirectory(_directory);
            _counters.CountJournalSync();
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    private void Compact()
    {
        List<StateEntry> entries;
        long generation;
        lock (_lock)
        {
            if (_disposed || _failed)
            {
                return;
            }

            // Every record in the log is in the store already (a write is applied before it is
            // logged), so this snapshot holds everything the logs before the new generation hold.
            entries = _store.Snapshot();
            generation = _generation + 1;
            FileStream next = CreateLog(generation);
            try
            {
                _log.Flush(flushToDisk: true);
            }
            finally
            {
                _log.Dispose();
            }

            _log = next;
            _generation = generation;
            _logBytes = HeaderBytes;
            _dirty = false;
        }

        WriteSnapshot(generation, entries);
        DeleteOlderThan(generation);
        _counters.CountJournalCompaction();
    }

    private void CompactQuietly()
    {
        try
        {
            Compact();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _counters.CountJournalFailure();
            _logger.LogError("eventual store {Store}: compaction failed (the log goes on): {Error}", _store.Name, e.Message);
        }
    }

    private void SyncQuietly()
    {
        try
        {
            Sync();
        }
        catch (IOException e)
        {
            _counters.CountJournalFailure();
            _logger.LogError("eventual store {Store}: cannot flush the journal to the disk: {Error}", _store.Name, e.Message);
        }
    }

    private void DeleteOlderThan(long generation)
    {
        foreach ((long older, string path) in Files(_directory, SnapshotPrefix).Concat(Files(_directory, LogPrefix)))
        {
            if (older < generation)
            {
                try
                {
                    File.Delete(path);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    _logger.LogWarning("eventual store {Store}: cannot delete {Path}: {Error}", _store.Name, path, e.Message);
                }
            }
        }
    }

    /// <summary>After a failed write: cuts the log back to its last whole record, or marks the journal failed.</summary>
    private void Rewind()
    {
        try
        {
            _log.SetLength(_logBytes);
            _log.Seek(_logBytes, SeekOrigin.Begin);
        }
        catch (IOException)
        {
            _failed = true;
            _logger.LogError("eventual store {Store}: the journal cannot be cut back after a failed write and takes no more writes", _store.Name);
        }
    }

    private static void SyncDirectory(string directory)
    {
        int fd = Open(directory, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            throw new IOException($"cannot open {directory} to flush it: errno {Marshal.GetLastPInvokeError()}");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"cannot flush {directory}: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static extern int Fsync(int fd);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);
}

/// <summary>An eventual store's journal could not take a write (the disk full or failing).</summary>
public sealed class EventualJournalException(string message, Exception? inner = null) : IOException(message, inner);
