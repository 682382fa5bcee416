using System.Buffers.Binary;
using System.Net.Sockets;

namespace Beemesh.Spiffe.Processes;

/// <summary>
/// The process at the other end of a unix socket, bound to that process rather than to its pid
/// number: its <c>SO_PEERCRED</c>, its start time and a pidfd, all taken when the connection is
/// accepted. <see cref="IsAlive"/> tells whether that same process still runs, so a caller whose
/// process exited (and whose pid may now belong to another process) is recognised as gone.
/// </summary>
public sealed class CallerProcess : IDisposable
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    private readonly PidFd? _pidFd;
    private readonly string _procRoot;

    private CallerProcess(int processId, uint userId, uint groupId, ulong startTime, PidFd? pidFd, string procRoot)
    {
        ProcessId = processId;
        UserId = userId;
        GroupId = groupId;
        StartTime = startTime;
        _pidFd = pidFd;
        _procRoot = procRoot;
    }

    /// <summary>The peer's pid, as seen from this process's pid namespace.</summary>
    public int ProcessId { get; }

    /// <summary>The peer's effective uid when it connected.</summary>
    public uint UserId { get; }

    /// <summary>The peer's effective gid when it connected.</summary>
    public uint GroupId { get; }

    /// <summary>The peer's start time (<c>/proc/PID/stat</c> field 22) when the connection was accepted.</summary>
    public ulong StartTime { get; }

    /// <summary>Whether a pidfd backs the liveness check (otherwise only the start time does).</summary>
    public bool HasPidFd => _pidFd is not null;

    /// <summary>
    /// True while the process that connected still runs: its pidfd has not signalled exit and
    /// <c>/proc/PID/stat</c> still shows the same start time. False once it exited or its pid was reused.
    /// </summary>
    public bool IsAlive =>
        (_pidFd is null || _pidFd.IsAlive) && ProcessStat.Read(ProcessId, _procRoot) is { } stat && stat.StartTime == StartTime;

    /// <summary>
    /// Reads the peer of a connected unix socket: <c>SO_PEERCRED</c>, the kernel's pidfd for it
    /// (<c>SO_PEERPIDFD</c>) or, on older kernels, a pidfd opened at once, and its start time.
    /// Null when the kernel refuses the credentials or the peer is already gone.
    /// </summary>
    public static CallerProcess? FromSocket(Socket socket, string procRoot = "/proc")
    {
        ArgumentNullException.ThrowIfNull(socket);
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } — three 32-bit native-endian fields.
        Span<byte> ucred = stackalloc byte[12];
        try
        {
            if (socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred) < 12)
            {
                return null;
            }
        }
        catch (SocketException)
        {
            return null;
        }

        int pid = BitConverter.IsLittleEndian ? BinaryPrimitives.ReadInt32LittleEndian(ucred) : BinaryPrimitives.ReadInt32BigEndian(ucred);
        uint uid = BitConverter.IsLittleEndian ? BinaryPrimitives.ReadUInt32LittleEndian(ucred[4..]) : BinaryPrimitives.ReadUInt32BigEndian(ucred[4..]);
        uint gid = BitConverter.IsLittleEndian ? BinaryPrimitives.ReadUInt32LittleEndian(ucred[8..]) : BinaryPrimitives.ReadUInt32BigEndian(ucred[8..]);
        if (pid <= 0)
        {
            return null;
        }

        return Bind(pid, uid, gid, PidFd.FromSocket(socket), procRoot);
    }

    /// <summary>
    /// Binds to process <paramref name="processId"/> as it runs now (for a pid learned some other
    /// way; uid and gid are left 0); null when it does not exist.
    /// </summary>
    public static CallerProcess? Open(int processId, string procRoot = "/proc") => Bind(processId, 0, 0, null, procRoot);

    /// <inheritdoc />
    public void Dispose() => _pidFd?.Dispose();

    private static CallerProcess? Bind(int pid, uint uid, uint gid, PidFd? pidFd, string procRoot)
    {
        // The pidfd first, then the start time: if the pid was already reused before the pidfd was
        // opened, the start time read after it belongs to the new process and the pidfd to the same
        // one, so at worst the binding is to the newcomer and never to a mix of both.
        pidFd ??= PidFd.Open(pid);
        if (pidFd is not null && !pidFd.IsAlive)
        {
            pidFd.Dispose();
            return null;
        }

        if (ProcessStat.Read(pid, procRoot) is not { } stat)
        {
            pidFd?.Dispose();
            return null;
        }

        return new CallerProcess(pid, uid, gid, stat.StartTime, pidFd, procRoot);
    }
}
