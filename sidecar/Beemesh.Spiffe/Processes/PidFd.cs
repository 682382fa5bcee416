using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Beemesh.Spiffe.Processes;

/// <summary>
/// A Linux pidfd (pidfd_open(2)): a descriptor that refers to one process, not to a pid number,
/// and becomes readable when that process exits. Holding it does not keep the pid from being
/// reused, but it never starts to refer to the new process.
/// </summary>
public sealed class PidFd : IDisposable
{
    private const int SolSocket = 1;
    private const int SoPeerPidFd = 77; // Linux 6.5+
    private const long SysPidFdOpen = 434; // same number on every architecture
    private const short PollIn = 0x1;

    private readonly SafeFileHandle _handle;

    private PidFd(SafeFileHandle handle)
    {
        _handle = handle;
    }

    /// <summary>The descriptor number, for diagnostics.</summary>
    public int Descriptor => (int)_handle.DangerousGetHandle();

    /// <summary>
    /// Takes the pidfd the kernel recorded for the peer of a connected unix socket when it called
    /// connect (<c>SO_PEERPIDFD</c>, Linux 6.5+); null when the kernel does not have it or the peer is gone.
    /// </summary>
    public static PidFd? FromSocket(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        Span<byte> value = stackalloc byte[4];
        try
        {
            if (socket.GetRawSocketOption(SolSocket, SoPeerPidFd, value) < 4)
            {
                return null;
            }
        }
        catch (SocketException)
        {
            return null;
        }

        int fd = BitConverter.ToInt32(value);
        return fd < 0 ? null : new PidFd(new SafeFileHandle(fd, ownsHandle: true));
    }

    /// <summary>Opens a pidfd for process <paramref name="processId"/>; null when it does not exist (or the kernel lacks pidfd_open).</summary>
    public static PidFd? Open(int processId)
    {
        if (processId <= 0)
        {
            return null;
        }

        long fd = Syscall(SysPidFdOpen, processId, 0);
        return fd < 0 ? null : new PidFd(new SafeFileHandle((nint)fd, ownsHandle: true));
    }

    /// <summary>True while the process has not exited (a pidfd polls readable once it has).</summary>
    public bool IsAlive
    {
        get
        {
            bool added = false;
            try
            {
                _handle.DangerousAddRef(ref added);
                var poll = new PollFd { Fd = (int)_handle.DangerousGetHandle(), Events = PollIn };
                int ready;
                do
                {
                    ready = Poll(ref poll, 1, 0);
                }
                while (ready < 0 && Marshal.GetLastPInvokeError() == 4); // EINTR

                return ready == 0;
            }
            catch (ObjectDisposedException)
            {
                return false;
            }
            finally
            {
                if (added)
                {
                    _handle.DangerousRelease();
                }
            }
        }
    }

    /// <inheritdoc />
    public void Dispose() => _handle.Dispose();

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [DllImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static extern long Syscall(long number, int pid, uint flags);

    [DllImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static extern int Poll(ref PollFd fds, ulong count, int timeout);
}
