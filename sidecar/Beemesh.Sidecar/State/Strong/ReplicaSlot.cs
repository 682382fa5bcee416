using System.Net;

namespace Beemesh.Sidecar.State.Strong;

/// <summary>
/// One replica's directory under a strong store's directory (<c>slot-ID</c>): its log, snapshots,
/// member list and the endpoints it serves (file <c>endpoints</c>). A running replica holds the
/// slot's <c>owner.lock</c> open exclusively; a slot whose lock can be taken belongs to a replica
/// that is gone, and a replica starting later takes it over with its data and its Raft endpoint,
/// so a restarted replica is the same group member and catches up from its own log.
/// </summary>
internal sealed class ReplicaSlot : IDisposable
{
    private readonly FileStream _owner;

    private ReplicaSlot(string path, FileStream owner, IPEndPoint? raft)
    {
        Path = path;
        _owner = owner;
        PreviousRaftEndPoint = raft;
    }

    /// <summary>The slot's directory.</summary>
    public string Path { get; }

    /// <summary>The Raft endpoint the slot's replica had, when it ran before.</summary>
    public IPEndPoint? PreviousRaftEndPoint { get; }

    /// <summary>
    /// Takes the store directory's join lock (one starting replica at a time decides whether it
    /// bootstraps the group or joins it), waiting up to <paramref name="timeout"/>.
    /// </summary>
    public static async Task<FileStream> LockStoreAsync(string storeDirectory, TimeSpan timeout, CancellationToken cancellationToken)
    {
        string path = System.IO.Path.Combine(storeDirectory, "join.lock");
        DateTime deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Scans <paramref name="storeDirectory"/> (under its join lock): the forward endpoints of the
    /// live replicas, and a slot for this replica: a gone replica's slot when there is one, else a new one.
    /// </summary>
    public static (ReplicaSlot Slot, List<IPEndPoint> LivePeers) Claim(string storeDirectory)
    {
        var live = new List<IPEndPoint>();
        ReplicaSlot? claimed = null;
        foreach (string directory in System.IO.Directory.EnumerateDirectories(storeDirectory, "slot-*").Order(StringComparer.Ordinal))
        {
            FileStream? owner = TryOwn(directory);
            (IPEndPoint? raft, IPEndPoint? forward) = ReadEndpoints(directory);
            if (owner is null)
            {
                if (forward is not null)
                {
                    live.Add(forward);
                }

                continue;
            }

            if (claimed is null && raft is not null)
            {
                claimed = new ReplicaSlot(directory, owner, raft);
            }
            else
            {
                owner.Dispose();
            }
        }

        if (claimed is null)
        {
            string path = System.IO.Path.Combine(storeDirectory, "slot-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6)));
            System.IO.Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            claimed = new ReplicaSlot(path, TryOwn(path) ?? throw new IOException($"cannot lock the new replica directory {path}"), null);
        }

        return (claimed, live);
    }

    /// <summary>Records the endpoints this replica serves, for replicas starting later.</summary>
    public void WriteEndpoints(IPEndPoint raft, IPEndPoint forward)
    {
        string file = System.IO.Path.Combine(Path, "endpoints");
        File.WriteAllText(file + ".tmp", $"raft={raft}\nforward={forward}\n");
        File.Move(file + ".tmp", file, overwrite: true);
    }

    /// <summary>Deletes the slot (a replica removed from the group gracefully: its log is of no further use).</summary>
    public void Delete()
    {
        try
        {
            System.IO.Directory.Delete(Path, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A replica starting later takes it over and rejoins as a fresh member of its old endpoint.
        }
    }

    /// <inheritdoc />
    public void Dispose() => _owner.Dispose();

    private static FileStream? TryOwn(string directory)
    {
        try
        {
            return new FileStream(System.IO.Path.Combine(directory, "owner.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static (IPEndPoint? Raft, IPEndPoint? Forward) ReadEndpoints(string directory)
    {
        IPEndPoint? raft = null, forward = null;
        try
        {
            foreach (string line in File.ReadAllLines(System.IO.Path.Combine(directory, "endpoints")))
            {
                if (line.StartsWith("raft=", StringComparison.Ordinal) && IPEndPoint.TryParse(line.AsSpan(5), out IPEndPoint? r))
                {
                    raft = r;
                }
                else if (line.StartsWith("forward=", StringComparison.Ordinal) && IPEndPoint.TryParse(line.AsSpan(8), out IPEndPoint? f))
                {
                    forward = f;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // no endpoints yet
        }

        return (raft, forward);
    }
}
