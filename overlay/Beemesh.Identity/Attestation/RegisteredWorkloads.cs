using System.Collections.Concurrent;
using Beemesh.Spiffe;
using Beemesh.Spiffe.Processes;

namespace Beemesh.Identity.Attestation;

/// <summary>
/// Attests callers by process ancestry: the agent registers the pid of every workload it starts,
/// and a caller gets the identity of the nearest registered process among itself and its ancestors
/// (walking the parent field of <c>/proc/PID/stat</c>), so helper processes a workload spawns share
/// its identity. Each registration remembers the process start time (<c>/proc/PID/stat</c> field 22)
/// of the workload and of the process that registered it, so a recycled pid never inherits a dead
/// workload's identity. Thread-safe.
/// </summary>
public sealed class RegisteredWorkloads : IWorkloadAttestor
{
    // Deep enough for any realistic process tree; bounds the walk if /proc shows a cycle.
    private const int MaxDepth = 64;

    private readonly ConcurrentDictionary<int, Registration> _byPid = new();
    private readonly string _procRoot;

    /// <summary>Creates an empty registry reading process information from <paramref name="procRoot"/>.</summary>
    public RegisteredWorkloads(string procRoot = "/proc")
    {
        _procRoot = procRoot;
    }

    /// <summary>Number of registered processes.</summary>
    public int Count => _byPid.Count;

    /// <summary>
    /// Registers process <paramref name="processId"/> (and so its descendants) as <paramref name="id"/>.
    /// Returns false when the process does not exist.
    /// </summary>
    public bool Register(int processId, SpiffeId id) => Register(processId, id, 0, 0);

    /// <summary>
    /// Registers process <paramref name="processId"/> as <paramref name="id"/>, remembering the process
    /// that asked for it (<paramref name="registrarProcessId"/> started at <paramref name="registrarStartTime"/>).
    /// Returns false when the process does not exist.
    /// </summary>
    public bool Register(int processId, SpiffeId id, int registrarProcessId, ulong registrarStartTime)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (ProcessStat.Read(processId, _procRoot) is not { } stat)
        {
            return false;
        }

        _byPid[processId] = new Registration(id, stat.StartTime, registrarProcessId, registrarStartTime);
        return true;
    }

    /// <summary>Removes the registration of <paramref name="processId"/>; returns whether there was one.</summary>
    public bool Unregister(int processId) => _byPid.TryRemove(processId, out _);

    /// <summary>The identity process <paramref name="processId"/> itself is registered as, when that same process still runs.</summary>
    public SpiffeId? RegisteredAs(int processId) =>
        _byPid.TryGetValue(processId, out Registration? registration) && ProcessStat.Read(processId, _procRoot)?.StartTime == registration.StartTime
            ? registration.Id
            : null;

    /// <summary>
    /// The nearest registered workload among <paramref name="processId"/> and its ancestors, skipping a
    /// registration of the process itself that the process made for itself (a sidecar registered as its
    /// own workload stays a sidecar). Null when the process is no workload and descends from none.
    /// </summary>
    public (int ProcessId, SpiffeId Id)? WorkloadOf(int processId, ulong startTime)
    {
        int pid = processId;
        for (int depth = 0; depth < MaxDepth && pid > 0; depth++)
        {
            if (ProcessStat.Read(pid, _procRoot) is not { } stat)
            {
                return null;
            }

            if (_byPid.TryGetValue(pid, out Registration? registration) && registration.StartTime == stat.StartTime)
            {
                bool selfRegistered = pid == processId && stat.StartTime == startTime
                    && registration.RegistrarProcessId == processId && registration.RegistrarStartTime == startTime;
                if (!selfRegistered)
                {
                    return (pid, registration.Id);
                }
            }

            if (pid == 1)
            {
                break;
            }

            pid = stat.ParentProcessId;
        }

        return null;
    }

    /// <inheritdoc />
    public SpiffeId? Attest(PeerCredentials caller)
    {
        int pid = caller.ProcessId;
        for (int depth = 0; depth < MaxDepth && pid > 0; depth++)
        {
            ProcessStat? stat = ProcessStat.Read(pid, _procRoot);
            if (_byPid.TryGetValue(pid, out Registration? registration))
            {
                if (stat?.StartTime == registration.StartTime)
                {
                    return registration.Id;
                }

                // The registered process died and its pid was reused: forget it.
                _byPid.TryRemove(new KeyValuePair<int, Registration>(pid, registration));
            }

            if (pid == 1 || stat is null)
            {
                break;
            }

            pid = stat.Value.ParentProcessId;
        }

        return null;
    }

    private sealed record Registration(SpiffeId Id, ulong StartTime, int RegistrarProcessId, ulong RegistrarStartTime);
}
