using System.Globalization;
using System.Net;
using Beemesh.Agent.Client;
using Beemesh.Agent.State;
using Beemesh.Spiffe;

namespace Beemesh.Agent.Workloads;

/// <summary>
/// The agent's table of workloads: validates registrations, assigns ids and mesh addresses,
/// answers name and address lookups, and keeps each sidecar's last connection report. Each
/// registration remembers its process's start time; <see cref="Reap"/> drops registrations whose
/// process is gone. With a state file, registrations, ids and mesh addresses are written to it
/// durably on every change, and the registry starts from it, keeping only the registrations whose
/// process still runs. Watchers of the list wait on a <see cref="ChangeFeed"/>.
/// Thread-safe (one lock; every operation is short).
/// </summary>
internal sealed class WorkloadRegistry
{
    private readonly object _lock = new();
    private readonly string _trustDomain;
    private MeshAddressPool? _pool;
    private readonly Dictionary<string, WorkloadRecord> _byId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (List<LiveConnection> Connections, DateTimeOffset At)> _reports = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Serial, DateTimeOffset NotAfter)> _svids = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _policyVersions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _listVersions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ulong?> _startTimes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (int Pid, ulong StartTime)> _registrars = new(StringComparer.Ordinal);
    private readonly ChangeFeed _feed;
    private List<WorkloadRecord> _remote = [];
    private List<string> _revokedNodes = [];
    private readonly string _procRoot;
    private readonly string? _stateFile;
    private long _nextId;
    private string? _handoffEndpoint;

    /// <summary>An empty registry that keeps nothing on disk.</summary>
    public WorkloadRegistry(string trustDomain, string meshCidr)
        : this(trustDomain, meshCidr, TimeProvider.System, "/proc", null)
    {
    }

    /// <summary>
    /// A registry kept in <paramref name="stateFile"/> (null: memory only), starting from its
    /// registrations whose process still runs, handing out mesh addresses of
    /// <paramref name="meshCidr"/> (the whole mesh CIDR on a node alone, this node's block in a
    /// mesh of nodes). A restored workload whose address is not this range's gets a new one. Throws
    /// <see cref="InvalidOperationException"/> naming the file when it is corrupt.
    /// </summary>
    public WorkloadRegistry(string trustDomain, string meshCidr, TimeProvider time, string procRoot, string? stateFile)
    {
        _trustDomain = trustDomain;
        _pool = new MeshAddressPool(meshCidr);
        _procRoot = procRoot;
        _stateFile = stateFile;
        long version = 0;
        if (stateFile is not null && StateFile.Load(stateFile, StateJsonContext.Default.StoredWorkloads, Check) is { } stored)
        {
            _nextId = stored.LastId;
            version = stored.Version;
            foreach (KeyValuePair<string, string> entry in stored.Addresses)
            {
                _pool.Restore(entry.Key, entry.Value);
            }

            foreach (StoredWorkload workload in stored.Workloads)
            {
                if (ProcessStartTime.Read(procRoot, workload.Record.Pid) == workload.StartTime)
                {
                    workload.Record.SpiffeId = IdentityOf(workload.Record.Name, workload.Record.Namespace).ToString();
                    _byId[workload.Record.Id] = workload.Record;
                    _startTimes[workload.Record.Id] = workload.StartTime;
                    _registrars[workload.Record.Id] = (workload.RegistrarPid, workload.RegistrarStartTime);
                }
                else
                {
                    DroppedOnLoad++;
                }
            }

            Readdress();
        }

        _feed = new ChangeFeed(time, version);
    }

    /// <summary>
    /// Raised after each change of this node's own registrations (added, removed, reaped, readdressed
    /// to a new range), outside the registry's lock; not for remote routes or revoked nodes. The
    /// overlay's route sync publishes on it at once.
    /// </summary>
    public event Action? LocalChanged;

    /// <summary>The range mesh addresses are handed out from; null while this node holds no block.</summary>
    public IPNetwork? AddressRange
    {
        get
        {
            lock (_lock)
            {
                return _pool?.Network;
            }
        }
    }

    /// <summary>
    /// Hands out addresses of <paramref name="range"/> from now on (null: none, every registration is
    /// refused) and moves every registered workload into it: each name gets a new address of the range
    /// (or none, an empty mesh address, without a range), remembered addresses of other ranges are
    /// forgotten, the change is stored and watchers are woken. Nothing happens when the range is the
    /// current one. Returns how many workloads changed address. Throws <see cref="IOException"/> when
    /// the change cannot be stored (it still holds in memory: the old addresses must not be handed out).
    /// </summary>
    public int SetAddressRange(IPNetwork? range)
    {
        TaskCompletionSource wake;
        int changed;
        bool moved = false;
        try
        {
            lock (_lock)
            {
                if (Nullable.Equals(range, _pool?.Network))
                {
                    return 0;
                }

                moved = true;
                _pool = range is { } r ? new MeshAddressPool(r.ToString()) : null;
                changed = Readdress();
                wake = _feed.Bump().Signal;
                try
                {
                    Save();
                }
                finally
                {
                    ChangeFeed.Wake(wake);
                }
            }
        }
        finally
        {
            if (moved)
            {
                LocalChanged?.Invoke();
            }
        }

        return changed;
    }

    // Under the lock (or in the constructor): gives every registered workload its name's address of
    // the current range, allocating one where the name has none there; returns how many changed.
    private int Readdress()
    {
        int changed = 0;
        foreach (WorkloadRecord record in _byId.Values.OrderBy(r => long.Parse(r.Id.AsSpan(1), CultureInfo.InvariantCulture)).ToList())
        {
            string address = _pool?.Allocate(Key(record.Name, record.Namespace), IsLive)?.ToString() ?? string.Empty;
            if (record.MeshAddress != address)
            {
                // A new object: snapshots already handed out keep what they said.
                _byId[record.Id] = CopyWithAddress(record, address);
                changed++;
            }
        }

        return changed;
    }

    private static WorkloadRecord CopyWithAddress(WorkloadRecord r, string address) => new()
    {
        Id = r.Id,
        Name = r.Name,
        Namespace = r.Namespace,
        Pid = r.Pid,
        SpiffeId = r.SpiffeId,
        MeshAddress = address,
        TunnelEndpoint = r.TunnelEndpoint,
        Ports = r.Ports,
        Node = r.Node,
        ServerName = r.ServerName,
    };

    /// <summary>
    /// Where this node's callers reach the agent's tunnel port (<c>ADDRESS:PORT</c>), which hands
    /// connections to sidecars that cannot be dialled themselves (<see cref="Add(WorkloadRegistration, int, ulong, bool)"/>
    /// with <c>handoffOnly</c>); null until the tunnel port listens.
    /// </summary>
    public string? HandoffEndpoint
    {
        get
        {
            lock (_lock)
            {
                return _handoffEndpoint;
            }
        }
    }

    /// <summary>
    /// Sets <see cref="HandoffEndpoint"/> and points every handoff-only workload (one restored from
    /// the state file included) at it; watchers are woken when a record changed.
    /// </summary>
    public void SetHandoffEndpoint(IPEndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        string text = endpoint.ToString();
        TaskCompletionSource? wake = null;
        lock (_lock)
        {
            _handoffEndpoint = text;
            foreach (WorkloadRecord record in _byId.Values.Where(r => r.ServerName is not null && r.TunnelEndpoint != text).ToList())
            {
                WorkloadRecord moved = CopyWithAddress(record, record.MeshAddress);
                moved.TunnelEndpoint = text;
                _byId[record.Id] = moved;
                wake ??= _feed.Bump().Signal;
            }

            if (wake is not null)
            {
                try
                {
                    Save();
                }
                catch (IOException)
                {
                    // Held in memory; the next change stores it.
                }
            }
        }

        if (wake is not null)
        {
            ChangeFeed.Wake(wake);
        }
    }

    /// <summary>The process that registered workload <paramref name="id"/> and its start time; (0, 0) when unknown.</summary>
    public (int Pid, ulong StartTime) RegistrarOf(string id)
    {
        lock (_lock)
        {
            return _registrars.GetValueOrDefault(id);
        }
    }

    /// <summary>Stored registrations not restored because their process is gone.</summary>
    public int DroppedOnLoad { get; }

    /// <summary>Random per agent start; carried by watch answers so a sidecar notices a restart.</summary>
    public string Epoch => _feed.Epoch;

    /// <summary>Bumped by every registration, removal and reaped workload.</summary>
    public long Version => _feed.Version;

    /// <summary>Number of watches currently waiting for a change.</summary>
    public int Waiters => _feed.Waiters;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _byId.Count;
            }
        }
    }

    /// <summary>Checks a registration; returns the problem in one line, or null when it is acceptable.</summary>
    public static string? Validate(WorkloadRegistration request)
    {
        if (!IsDnsLabel(request.Name))
        {
            return "name must be a DNS label (lowercase letters, digits, '-'; 1-63 characters)";
        }

        if (request.Namespace is not null && !IsDnsLabel(request.Namespace))
        {
            return "namespace must be a DNS label (lowercase letters, digits, '-'; 1-63 characters)";
        }

        if (request.Pid <= 0)
        {
            return "pid must be a positive process id";
        }

        if (string.IsNullOrEmpty(request.TunnelEndpoint) || !IPEndPoint.TryParse(request.TunnelEndpoint, out IPEndPoint? endpoint) || endpoint.Port == 0)
        {
            return "tunnelEndpoint must be ADDRESS:PORT";
        }

        foreach (WorkloadPort? port in request.Ports ?? [])
        {
            if (port is null || port.Port is < 1 or > 65535)
            {
                return "ports[].port must be between 1 and 65535";
            }

            if (port.Protocol is not ("tcp" or "http"))
            {
                return $"port {port.Port}: protocol must be \"tcp\" or \"http\"";
            }
        }

        return null;
    }

    /// <summary>The SPIFFE ID a registration gets.</summary>
    public SpiffeId IdentityOf(string name, string ns) => SpiffeId.FromParts(_trustDomain, $"/ns/{ns}/sa/{name}");

    /// <summary>
    /// Adds a validated registration; null when the address range has no free address or this node
    /// holds no block (<see cref="AddressRange"/> null). Throws
    /// <see cref="IOException"/> (and adds nothing) when it cannot be stored.
    /// </summary>
    public WorkloadRecord? Add(WorkloadRegistration request) => Add(request, 0, 0);

    /// <summary>
    /// As <see cref="Add(WorkloadRegistration)"/>, remembering the registering process
    /// (<paramref name="registrarPid"/> started at <paramref name="registrarStartTime"/>) so a restarted
    /// agent still tells the sidecar from its workload.
    /// </summary>
    public WorkloadRecord? Add(WorkloadRegistration request, int registrarPid, ulong registrarStartTime) => Add(request, registrarPid, registrarStartTime, false);

    /// <summary>
    /// As <see cref="Add(WorkloadRegistration, int, ulong)"/>; with <paramref name="handoffOnly"/> the
    /// workload's sidecar cannot be dialled (it runs in another network namespace, such as a pod's):
    /// its record names the agent's tunnel port (<see cref="HandoffEndpoint"/>) with the workload's
    /// TLS server name, and the tunnel port passes its connections to the sidecar as descriptors.
    /// Throws <see cref="InvalidOperationException"/> when the tunnel port does not listen.
    /// </summary>
    public WorkloadRecord? Add(WorkloadRegistration request, int registrarPid, ulong registrarStartTime, bool handoffOnly)
    {
        string name = request.Name!;
        string ns = request.Namespace ?? "default";
        WorkloadRecord record;
        TaskCompletionSource wake;
        lock (_lock)
        {
            if (handoffOnly && _handoffEndpoint is null)
            {
                throw new InvalidOperationException("this agent's tunnel port does not listen, so a sidecar in another network namespace cannot be reached");
            }

            IPAddress? address = _pool?.Allocate(Key(name, ns), IsLive);
            if (address is null)
            {
                return null;
            }

            string id = "w" + (++_nextId).ToString(CultureInfo.InvariantCulture);
            record = new WorkloadRecord
            {
                Id = id,
                Name = name,
                Namespace = ns,
                Pid = request.Pid,
                SpiffeId = IdentityOf(name, ns).ToString(),
                MeshAddress = address.ToString(),
                TunnelEndpoint = handoffOnly ? _handoffEndpoint! : request.TunnelEndpoint!,
                Ports = [.. (request.Ports ?? []).Select(p => new WorkloadPort { Port = p.Port, Protocol = p.Protocol })],
                ServerName = handoffOnly ? TunnelServerName.For(name, ns, _trustDomain, id) : null,
            };
            _byId[record.Id] = record;
            _startTimes[record.Id] = ProcessStartTime.Read(_procRoot, request.Pid);
            _registrars[record.Id] = (registrarPid, registrarStartTime);
            try
            {
                Save();
            }
            catch
            {
                _byId.Remove(record.Id);
                _startTimes.Remove(record.Id);
                _registrars.Remove(record.Id);
                throw;
            }

            wake = _feed.Bump().Signal;
        }

        ChangeFeed.Wake(wake);
        LocalChanged?.Invoke();
        return record;
    }

    /// <summary>Removes a registration; returns it, or null when unknown.</summary>
    public WorkloadRecord? Remove(string id)
    {
        WorkloadRecord? record;
        TaskCompletionSource wake;
        lock (_lock)
        {
            if (!_byId.Remove(id, out record))
            {
                return null;
            }

            _startTimes.Remove(id, out ulong? startTime);
            try
            {
                Save();
            }
            catch
            {
                _byId[id] = record;
                _startTimes[id] = startTime;
                throw;
            }

            _registrars.Remove(id);
            _reports.Remove(id);
            _svids.Remove(id);
            _policyVersions.Remove(id);
            _listVersions.Remove(id);
            wake = _feed.Bump().Signal;
        }

        ChangeFeed.Wake(wake);
        LocalChanged?.Invoke();
        return record;
    }

    /// <summary>
    /// Drops every registration whose process is gone (its pid no longer runs, or runs a process
    /// started at another time) and returns them. Storing the change is best effort: a stored
    /// registration of a gone process is dropped again when the registry loads.
    /// </summary>
    public List<WorkloadRecord> Reap()
    {
        List<WorkloadRecord> gone = [];
        TaskCompletionSource wake;
        lock (_lock)
        {
            foreach (WorkloadRecord record in _byId.Values)
            {
                ulong? startTime = _startTimes.GetValueOrDefault(record.Id);
                if (startTime is null || ProcessStartTime.Read(_procRoot, record.Pid) != startTime)
                {
                    gone.Add(record);
                }
            }

            if (gone.Count == 0)
            {
                return gone;
            }

            foreach (WorkloadRecord record in gone)
            {
                _byId.Remove(record.Id);
                _startTimes.Remove(record.Id);
                _registrars.Remove(record.Id);
                _reports.Remove(record.Id);
                _svids.Remove(record.Id);
                _policyVersions.Remove(record.Id);
                _listVersions.Remove(record.Id);
            }

            try
            {
                Save();
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }

            wake = _feed.Bump().Signal;
        }

        ChangeFeed.Wake(wake);
        LocalChanged?.Invoke();
        return gone;
    }

    /// <summary>Every registration, then the remote routes, with the version and epoch it was taken at.</summary>
    public WorkloadSet Snapshot()
    {
        lock (_lock)
        {
            return new WorkloadSet { Epoch = _feed.Epoch, Version = _feed.Version, Workloads = [.. List(), .. _remote], RevokedNodes = [.. _revokedNodes] };
        }
    }

    /// <summary>The remote routes (workloads of other nodes, <see cref="WorkloadRecord.Node"/> set).</summary>
    public List<WorkloadRecord> RemoteRoutes()
    {
        lock (_lock)
        {
            return [.. _remote];
        }
    }

    /// <summary>
    /// Replaces the remote routes learnt from the overlay (each with <see cref="WorkloadRecord.Node"/>
    /// set); wakes watchers when the set changed. Remote routes are not stored: the overlay's leases
    /// bring them back after a restart.
    /// </summary>
    public void SetRemoteRoutes(List<WorkloadRecord> routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        List<WorkloadRecord> sorted = [.. routes.OrderBy(r => r.Node, StringComparer.Ordinal).ThenBy(r => r.Id, StringComparer.Ordinal)];
        TaskCompletionSource wake;
        lock (_lock)
        {
            if (sorted.Count == _remote.Count && sorted.Zip(_remote).All(p => SameRoute(p.First, p.Second)))
            {
                return;
            }

            _remote = sorted;
            wake = _feed.Bump().Signal;
        }

        ChangeFeed.Wake(wake);
    }

    /// <summary>
    /// Replaces the names of the revoked nodes (handed to sidecars with the workload list, so they cut
    /// connections whose peer SVID one of those nodes issued); wakes watchers when the set changed.
    /// </summary>
    public void SetRevokedNodes(IEnumerable<string> nodeNames)
    {
        ArgumentNullException.ThrowIfNull(nodeNames);
        List<string> sorted = [.. nodeNames.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
        TaskCompletionSource wake;
        lock (_lock)
        {
            if (sorted.SequenceEqual(_revokedNodes, StringComparer.Ordinal))
            {
                return;
            }

            _revokedNodes = sorted;
            wake = _feed.Bump().Signal;
        }

        ChangeFeed.Wake(wake);
    }

    private static bool SameRoute(WorkloadRecord a, WorkloadRecord b) =>
        a.Node == b.Node && a.Id == b.Id && a.Name == b.Name && a.Namespace == b.Namespace && a.SpiffeId == b.SpiffeId
        && a.MeshAddress == b.MeshAddress && a.TunnelEndpoint == b.TunnelEndpoint
        && a.Ports.Select(p => (p.Port, p.Protocol)).SequenceEqual(b.Ports.Select(p => (p.Port, p.Protocol)));

    /// <summary>
    /// Answers as soon as the version exceeds <paramref name="since"/> (at once when
    /// <paramref name="epoch"/> is given and is not this run's), or with the unchanged list once
    /// <paramref name="timeout"/> has passed.
    /// </summary>
    public async Task<WorkloadSet> WatchAsync(string? epoch, long since, TimeSpan timeout, CancellationToken cancellationToken)
    {
        await _feed.WaitAsync(epoch, since, timeout, cancellationToken).ConfigureAwait(false);
        return Snapshot();
    }

    /// <summary>Whether another registration still attests <paramref name="pid"/>.</summary>
    public bool IsPidRegistered(int pid)
    {
        lock (_lock)
        {
            foreach (WorkloadRecord record in _byId.Values)
            {
                if (record.Pid == pid)
                {
                    return true;
                }
            }

            return false;
        }
    }

    public List<WorkloadRecord> List()
    {
        lock (_lock)
        {
            return [.. _byId.Values.OrderBy(r => r.Namespace, StringComparer.Ordinal).ThenBy(r => r.Name, StringComparer.Ordinal).ThenBy(r => r.Id, StringComparer.Ordinal)];
        }
    }

    /// <summary>
    /// Finds the newest registration for <c>NAME.NAMESPACE.svc.cluster.local</c>, <c>NAME.NAMESPACE</c>
    /// (either with a trailing dot, any case).
    /// </summary>
    public WorkloadRecord? Resolve(string host)
    {
        if (ServiceName(host) is not { } parts)
        {
            return null;
        }

        lock (_lock)
        {
            // A workload of this node first; else a remote route (the newest by its node's order).
            return Newest(r => r.Name == parts[0] && r.Namespace == parts[1])
                ?? _remote.LastOrDefault(r => r.Name == parts[0] && r.Namespace == parts[1]);
        }
    }

    /// <summary>
    /// The service <c>NAME.NAMESPACE</c> names (as <see cref="Resolve"/> takes it): every replica, this
    /// node's registrations and other nodes' routes, in the order callers' sidecars balance over them,
    /// and the address the name resolves to (<see cref="ServiceRecord.Of"/>); null when it has none.
    /// </summary>
    public ServiceRecord? ResolveService(string host)
    {
        if (ServiceName(host) is not { } parts)
        {
            return null;
        }

        lock (_lock)
        {
            return ServiceRecord.Of([.. _byId.Values, .. _remote], parts[0], parts[1]);
        }
    }

    // NAME.NAMESPACE[.svc.cluster.local][.], any case: [name, namespace] in lower case, or null.
    private static string[]? ServiceName(string host)
    {
        string h = host.TrimEnd('.').ToLowerInvariant();
        const string suffix = ".svc.cluster.local";
        if (h.EndsWith(suffix, StringComparison.Ordinal))
        {
            h = h[..^suffix.Length];
        }

        string[] parts = h.Split('.');
        return parts.Length == 2 ? parts : null;
    }

    /// <summary>
    /// The id of this node's newest workload <paramref name="name"/> in <paramref name="ns"/> (the
    /// one <see cref="LocalTunnelEndpoint(string, string)"/> leads to); null when none is registered here.
    /// </summary>
    public string? LocalWorkloadId(string name, string ns) => LocalWorkloadId(name, ns, null);

    /// <summary>
    /// The id of this node's workload <paramref name="replica"/> when it is registered here as
    /// <paramref name="name"/> in <paramref name="ns"/>; else (no replica named, or it went away) as
    /// <see cref="LocalWorkloadId(string, string)"/>: another replica of the name holds the same
    /// identity and serves the connection.
    /// </summary>
    public string? LocalWorkloadId(string name, string ns, string? replica)
    {
        lock (_lock)
        {
            return Replica(name, ns, replica)?.Id;
        }
    }

    /// <summary>
    /// The tunnel endpoint of this node's newest workload <paramref name="name"/> in
    /// <paramref name="ns"/>; null when none is registered here (remote routes are not considered:
    /// the tunnel port only leads to this node's own sidecars).
    /// </summary>
    public IPEndPoint? LocalTunnelEndpoint(string name, string ns) => LocalTunnelEndpoint(name, ns, null);

    /// <summary>
    /// The tunnel endpoint of this node's workload <paramref name="replica"/> when it is registered
    /// here as <paramref name="name"/> in <paramref name="ns"/>; else as
    /// <see cref="LocalTunnelEndpoint(string, string)"/>.
    /// </summary>
    public IPEndPoint? LocalTunnelEndpoint(string name, string ns, string? replica)
    {
        lock (_lock)
        {
            WorkloadRecord? record = Replica(name, ns, replica);
            return record is not null && IPEndPoint.TryParse(record.TunnelEndpoint, out IPEndPoint? endpoint) ? endpoint : null;
        }
    }

    // Under the lock: the named replica when it is this name's, else the newest of the name.
    private WorkloadRecord? Replica(string name, string ns, string? replica) =>
        replica is not null && _byId.TryGetValue(replica, out WorkloadRecord? named) && named.Name == name && named.Namespace == ns
            ? named
            : Newest(r => r.Name == name && r.Namespace == ns);

    /// <summary>Finds the newest registration holding mesh address <paramref name="address"/>.</summary>
    public WorkloadRecord? ResolveAddress(IPAddress address)
    {
        string text = address.ToString();
        lock (_lock)
        {
            return Newest(r => r.MeshAddress == text) ?? _remote.LastOrDefault(r => r.MeshAddress == text);
        }
    }

    /// <summary>Replaces a workload's connection report; false when the workload is unknown.</summary>
    public bool Report(string id, List<LiveConnection> connections, DateTimeOffset at) => Report(id, connections, at, out _);

    /// <summary>Replaces a workload's connection report and returns its registration; false when the workload is unknown.</summary>
    public bool Report(string id, List<LiveConnection> connections, DateTimeOffset at, out WorkloadRecord? record)
    {
        lock (_lock)
        {
            if (!_byId.TryGetValue(id, out record))
            {
                return false;
            }

            _reports[id] = (connections, at);
            return true;
        }
    }

    /// <summary>Records the SVID a workload's sidecar says it holds (from its connection report).</summary>
    public void RecordSvid(string id, string serial, DateTimeOffset notAfter)
    {
        lock (_lock)
        {
            if (_byId.ContainsKey(id))
            {
                _svids[id] = (serial, notAfter);
            }
        }
    }

    /// <summary>Records the version of the policy set a workload's sidecar says it enforces (from its connection report).</summary>
    public void RecordPolicyVersion(string id, long version)
    {
        lock (_lock)
        {
            if (_byId.ContainsKey(id))
            {
                _policyVersions[id] = version;
            }
        }
    }

    /// <summary>
    /// Records the version of this registry's list a workload's sidecar says it routes by (from its
    /// connection report); a list of another epoch (an earlier start of the agent) clears it.
    /// </summary>
    public void RecordListVersion(string id, string? epoch, long version)
    {
        lock (_lock)
        {
            if (!_byId.ContainsKey(id))
            {
                return;
            }

            if (epoch == _feed.Epoch)
            {
                _listVersions[id] = version;
            }
            else
            {
                _listVersions.Remove(id);
            }
        }
    }

    /// <summary>The version of this registry's list a workload's sidecar last reported routing by, or null.</summary>
    public long? ListVersionOf(string id)
    {
        lock (_lock)
        {
            return _listVersions.TryGetValue(id, out long version) ? version : null;
        }
    }

    /// <summary>The policy set version a workload's sidecar last reported enforcing, or null.</summary>
    public long? PolicyVersionOf(string id)
    {
        lock (_lock)
        {
            return _policyVersions.TryGetValue(id, out long version) ? version : null;
        }
    }

    /// <summary>The SVID a workload's sidecar last reported holding, or null.</summary>
    public (string Serial, DateTimeOffset NotAfter)? SvidOf(string id)
    {
        lock (_lock)
        {
            return _svids.TryGetValue(id, out var svid) ? svid : null;
        }
    }

    public (List<LiveConnection> Connections, DateTimeOffset? At) ReportOf(string id)
    {
        lock (_lock)
        {
            return _reports.TryGetValue(id, out var report) ? ([.. report.Connections], report.At) : ([], null);
        }
    }

    public int ConnectionCount
    {
        get
        {
            lock (_lock)
            {
                int n = 0;
                foreach (var report in _reports.Values)
                {
                    n += report.Connections.Count;
                }

                return n;
            }
        }
    }

    /// <summary>Writes the registry to its state file (under the lock); nothing without one.</summary>
    private void Save()
    {
        if (_stateFile is null)
        {
            return;
        }

        var stored = new StoredWorkloads { Version = _feed.Version + 1, LastId = _nextId, Addresses = _pool?.Assignments() ?? [] };
        foreach (WorkloadRecord record in _byId.Values)
        {
            if (_startTimes.GetValueOrDefault(record.Id) is { } startTime)
            {
                (int registrarPid, ulong registrarStart) = _registrars.GetValueOrDefault(record.Id);
                stored.Workloads.Add(new StoredWorkload { Record = record, StartTime = startTime, RegistrarPid = registrarPid, RegistrarStartTime = registrarStart });
            }
        }

        StateFile.Save(_stateFile, stored, StateJsonContext.Default.StoredWorkloads);
    }

    /// <summary>A stored file must hold what this registry would have stored.</summary>
    private static string? Check(StoredWorkloads stored)
    {
        if (stored.Format != 1)
        {
            return $"format {stored.Format} is not 1";
        }

        if (stored.Version < 0 || stored.LastId < 0 || stored.Addresses is null || stored.Workloads is null)
        {
            return "version, lastId, addresses or workloads missing";
        }

        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (StoredWorkload? workload in stored.Workloads)
        {
            WorkloadRecord? record = workload?.Record;
            if (record is null || !record.Id.StartsWith('w') || !long.TryParse(record.Id.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out long id)
                || id <= 0 || id > stored.LastId || !ids.Add(record.Id))
            {
                return "a workload without a valid, unique id";
            }

            var registration = new WorkloadRegistration
            {
                Name = record.Name,
                Namespace = record.Namespace,
                Pid = record.Pid,
                TunnelEndpoint = record.TunnelEndpoint,
                Ports = record.Ports,
            };
            if (Validate(registration) is { } problem)
            {
                return $"workload {record.Id}: {problem}";
            }

            // Empty while the node held no mesh address block.
            if (record.MeshAddress.Length > 0 && !IPAddress.TryParse(record.MeshAddress, out _))
            {
                return $"workload {record.Id}: meshAddress is not an address";
            }
        }

        return null;
    }

    private WorkloadRecord? Newest(Func<WorkloadRecord, bool> match)
    {
        WorkloadRecord? best = null;
        long bestId = -1;
        foreach (WorkloadRecord record in _byId.Values)
        {
            long id = long.Parse(record.Id.AsSpan(1), CultureInfo.InvariantCulture);
            if (match(record) && id > bestId)
            {
                best = record;
                bestId = id;
            }
        }

        return best;
    }

    private bool IsLive(string key)
    {
        foreach (WorkloadRecord record in _byId.Values)
        {
            if (Key(record.Name, record.Namespace) == key)
            {
                return true;
            }
        }

        return false;
    }

    private static string Key(string name, string ns) => ns + "/" + name;

    private static bool IsDnsLabel(string? text)
    {
        if (string.IsNullOrEmpty(text) || text.Length > 63 || text[0] == '-' || text[^1] == '-')
        {
            return false;
        }

        foreach (char c in text)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '-'))
            {
                return false;
            }
        }

        return true;
    }
}
