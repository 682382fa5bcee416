using System.Globalization;
using System.Net;
using Beemesh.Agent.Client;
using Beemesh.Spiffe;

namespace Beemesh.Agent.Workloads;

/// <summary>
/// The agent's table of workloads: validates registrations, assigns ids and mesh addresses,
/// answers name and address lookups, and keeps each sidecar's last connection report.
/// Thread-safe (one lock; every operation is short).
/// </summary>
internal sealed class WorkloadRegistry
{
    private readonly object _lock = new();
    private readonly string _trustDomain;
    private readonly MeshAddressPool _pool;
    private readonly Dictionary<string, WorkloadRecord> _byId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (List<LiveConnection> Connections, DateTimeOffset At)> _reports = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Serial, DateTimeOffset NotAfter)> _svids = new(StringComparer.Ordinal);
    private long _nextId;

    public WorkloadRegistry(string trustDomain, string meshCidr)
    {
        _trustDomain = trustDomain;
        _pool = new MeshAddressPool(meshCidr);
    }

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

    /// <summary>Adds a validated registration; null when the mesh range has no free address.</summary>
    public WorkloadRecord? Add(WorkloadRegistration request)
    {
        string name = request.Name!;
        string ns = request.Namespace ?? "default";
        lock (_lock)
        {
            IPAddress? address = _pool.Allocate(Key(name, ns), IsLive);
            if (address is null)
            {
                return null;
            }

            var record = new WorkloadRecord
            {
                Id = "w" + (++_nextId).ToString(CultureInfo.InvariantCulture),
                Name = name,
                Namespace = ns,
                Pid = request.Pid,
                SpiffeId = IdentityOf(name, ns).ToString(),
                MeshAddress = address.ToString(),
                TunnelEndpoint = request.TunnelEndpoint!,
                Ports = [.. (request.Ports ?? []).Select(p => new WorkloadPort { Port = p.Port, Protocol = p.Protocol })],
            };
            _byId[record.Id] = record;
            return record;
        }
    }

    /// <summary>Removes a registration; returns it, or null when unknown.</summary>
    public WorkloadRecord? Remove(string id)
    {
        lock (_lock)
        {
            if (!_byId.Remove(id, out WorkloadRecord? record))
            {
                return null;
            }

            _reports.Remove(id);
            _svids.Remove(id);
            return record;
        }
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
        string h = host.TrimEnd('.').ToLowerInvariant();
        const string suffix = ".svc.cluster.local";
        if (h.EndsWith(suffix, StringComparison.Ordinal))
        {
            h = h[..^suffix.Length];
        }

        string[] parts = h.Split('.');
        if (parts.Length != 2)
        {
            return null;
        }

        lock (_lock)
        {
            return Newest(r => r.Name == parts[0] && r.Namespace == parts[1]);
        }
    }

    /// <summary>Finds the newest registration holding mesh address <paramref name="address"/>.</summary>
    public WorkloadRecord? ResolveAddress(IPAddress address)
    {
        string text = address.ToString();
        lock (_lock)
        {
            return Newest(r => r.MeshAddress == text);
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
