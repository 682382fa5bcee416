using System.Net;

namespace Beemesh.Sidecar.State.Replicas;

/// <summary>
/// One replica's directory under a store's directory (<c>slot-ID</c>): whatever the store keeps
/// there and the endpoints the replica serves (file <c>endpoints</c>, one <c>NAME=ADDRESS:PORT</c>
/// a line). A running replica holds the slot's <c>owner.lock</c> open exclusively; a slot whose
/// lock can be taken belongs to a replica that is gone, and a replica starting later takes it over
/// (a strong replica with its data and its Raft endpoint, so it is the same group member and catches
/// up from its own log).
/// </summary>
internal sealed class ReplicaSlot : IDisposable
{
    private readonly FileStream _owner;

    private ReplicaSlot(string path, FileStream owner, IReadOnlyDictionary<string, IPEndPoint> previous)
    {
        Path = path;
        _owner = owner;
        PreviousEndPoints = previous;
    }

    /// <summary>The slot's directory.</summary>
    public string Path { get; }

    /// <summary>The endpoints the slot's replica had, when it ran before (empty for a new slot).</summary>
    public IReadOnlyDictionary<string, IPEndPoint> PreviousEndPoints { get; }

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
    /// Scans <paramref name="storeDirectory"/>: the endpoints named <paramref name="peerEndPoint"/> of
    /// the live replicas, and a slot for this replica: a gone replica's slot when there is one (with
    /// an endpoint named <paramref name="reclaimEndPoint"/> recorded, when that is given, on
    /// <paramref name="reclaimAddress"/> when that is given), else a new one.
    /// </summary>
    public static (ReplicaSlot Slot, List<IPEndPoint> LivePeers) Claim(string storeDirectory, string peerEndPoint, string? reclaimEndPoint, IPAddress? reclaimAddress = null)
    {
        var live = new List<IPEndPoint>();
        ReplicaSlot? claimed = null;
        foreach (string directory in System.IO.Directory.EnumerateDirectories(storeDirectory, "slot-*").Order(StringComparer.Ordinal))
        {
            FileStream? owner = TryOwn(directory);
            Dictionary<string, IPEndPoint> endpoints = ReadEndpoints(directory);
            if (owner is null)
            {
                if (endpoints.TryGetValue(peerEndPoint, out IPEndPoint? peer))
                {
                    live.Add(peer);
                }

                continue;
            }

            if (claimed is null && (reclaimEndPoint is null
                || (endpoints.TryGetValue(reclaimEndPoint, out IPEndPoint? previous) && (reclaimAddress is null || previous.Address.Equals(reclaimAddress)))))
            {
                claimed = new ReplicaSlot(directory, owner, endpoints);
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
            claimed = new ReplicaSlot(path, TryOwn(path) ?? throw new IOException($"cannot lock the new replica directory {path}"), new Dictionary<string, IPEndPoint>());
        }

        return (claimed, live);
    }

    /// <summary>
    /// The slots of <paramref name="storeDirectory"/> whose replicas are gone, but for
    /// <paramref name="self"/>, each locked (so no replica starting now takes it too): a replica
    /// starting takes over their data and then deletes them.
    /// </summary>
    public static List<ReplicaSlot> ClaimGone(string storeDirectory, string self)
    {
        var gone = new List<ReplicaSlot>();
        foreach (string directory in System.IO.Directory.EnumerateDirectories(storeDirectory, "slot-*").Order(StringComparer.Ordinal))
        {
            if (directory != self && TryOwn(directory) is FileStream owner)
            {
                gone.Add(new ReplicaSlot(directory, owner, ReadEndpoints(directory)));
            }
        }

        return gone;
    }

    /// <summary>
    /// The endpoints named <paramref name="name"/> of the replicas running now, but for
    /// <paramref name="self"/>'s slot. Needs no lock: probing a gone replica's slot holds its
    /// <c>owner.lock</c> only for a moment (a replica claiming it then makes a new slot).
    /// </summary>
    public static List<IPEndPoint> LivePeers(string storeDirectory, string name, string? self)
    {
        var live = new List<IPEndPoint>();
        IEnumerable<string> directories;
        try
        {
            directories = System.IO.Directory.EnumerateDirectories(storeDirectory, "slot-*").Order(StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return live;
        }

        foreach (string directory in directories)
        {
            if (directory == self)
            {
                continue;
            }

            using FileStream? owner = TryOwn(directory);
            if (owner is null && ReadEndpoints(directory).TryGetValue(name, out IPEndPoint? peer))
            {
                live.Add(peer);
            }
        }

        return live;
    }

    /// <summary>
    /// Every endpoint recorded in a slot of <paramref name="storeDirectory"/>, live or gone: what a
    /// replica of this node may serve (a relay from another node is spliced only to one of these).
    /// </summary>
    public static HashSet<IPEndPoint> AllEndPoints(string storeDirectory)
    {
        var all = new HashSet<IPEndPoint>();
        try
        {
            foreach (string directory in System.IO.Directory.EnumerateDirectories(storeDirectory, "slot-*"))
            {
                all.UnionWith(ReadEndpoints(directory).Values);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // no slots
        }

        return all;
    }

    /// <summary>Records the endpoints this replica serves, for replicas starting later.</summary>
    public void WriteEndpoints(IReadOnlyDictionary<string, IPEndPoint> endpoints)
    {
        string file = System.IO.Path.Combine(Path, "endpoints");
        File.WriteAllText(file + ".tmp", string.Concat(endpoints.Select(static e => $"{e.Key}={e.Value}\n")));
        File.Move(file + ".tmp", file, overwrite: true);
    }

    /// <summary>Deletes the slot (a replica removed from the group gracefully: its data is of no further use).</summary>
    public void Delete()
    {
        try
        {
            System.IO.Directory.Delete(Path, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A replica starting later takes it over.
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
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static Dictionary<string, IPEndPoint> ReadEndpoints(string directory)
    {
        var endpoints = new Dictionary<string, IPEndPoint>(StringComparer.Ordinal);
        try
        {
            foreach (string line in File.ReadAllLines(System.IO.Path.Combine(directory, "endpoints")))
            {
                int equals = line.IndexOf('=', StringComparison.Ordinal);
                if (equals > 0 && IPEndPoint.TryParse(line.AsSpan(equals + 1), out IPEndPoint? endpoint))
                {
                    endpoints[line[..equals]] = endpoint;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // no endpoints yet
        }

        return endpoints;
    }
}
