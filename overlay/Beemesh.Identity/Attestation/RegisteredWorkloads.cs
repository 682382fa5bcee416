using System.Collections.Concurrent;
using Beemesh.Spiffe;

namespace Beemesh.Identity.Attestation;

/// <summary>
/// Attests callers by process ancestry: the agent registers the pid of every workload it starts,
/// and a caller gets the identity of the nearest registered process among itself and its ancestors
/// (walking <c>PPid</c> in <c>/proc/PID/status</c>), so helper processes a workload spawns share its
/// identity. Each registration remembers the process start time (<c>/proc/PID/stat</c> field 22),
/// so a recycled pid never inherits a dead workload's identity. Thread-safe.
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
    public bool Register(int processId, SpiffeId id)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (ReadStartTime(processId) is not { } startTime)
        {
            return false;
        }

        _byPid[processId] = new Registration(id, startTime);
        return true;
    }

    /// <summary>Removes the registration of <paramref name="processId"/>; returns whether there was one.</summary>
    public bool Unregister(int processId) => _byPid.TryRemove(processId, out _);

    /// <inheritdoc />
    public SpiffeId? Attest(PeerCredentials caller)
    {
        int pid = caller.ProcessId;
        for (int depth = 0; depth < MaxDepth && pid > 0; depth++)
        {
            if (_byPid.TryGetValue(pid, out Registration? registration))
            {
                if (ReadStartTime(pid) == registration.StartTime)
                {
                    return registration.Id;
                }

                // The registered process died and its pid was reused: forget it.
                _byPid.TryRemove(new KeyValuePair<int, Registration>(pid, registration));
            }

            if (pid == 1)
            {
                break;
            }

            pid = ReadParentPid(pid) ?? 0;
        }

        return null;
    }

    private int? ReadParentPid(int pid)
    {
        try
        {
            foreach (string line in File.ReadLines(Path.Combine(_procRoot, pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "status")))
            {
                if (line.StartsWith("PPid:", StringComparison.Ordinal))
                {
                    return int.TryParse(line.AsSpan(5).Trim(), out int parent) ? parent : null;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }

    private ulong? ReadStartTime(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText(Path.Combine(_procRoot, pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "stat"));
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }

        // proc(5): the command name (field 2) is in parentheses and may hold spaces or ')', so count
        // fields from the last ')'. Field 3 (state) follows it; starttime is field 22.
        int close = text.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }

        string[] fields = text[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        const int startTimeIndex = 22 - 3;
        return fields.Length > startTimeIndex && ulong.TryParse(fields[startTimeIndex], out ulong start) ? start : null;
    }

    private sealed record Registration(SpiffeId Id, ulong StartTime);
}
