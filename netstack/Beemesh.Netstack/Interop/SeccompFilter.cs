using System.Runtime.InteropServices;

namespace Beemesh.Netstack.Interop;

/// <summary>
/// Installs a seccomp-BPF deny-list on every thread of the current process, in the spirit of
/// slirp4netns <c>--enable-seccomp</c>: everything is allowed except syscalls a network helper
/// never needs and an attacker would want (exec, ptrace, module loading, mounts, namespace
/// changes, reboot, handle-based opens). Blocked calls fail with <c>EPERM</c> instead of killing
/// the process, because the .NET runtime itself probes some of them (for example <c>prctl</c>
/// to name threads) and must survive the refusal. A syscall made under a foreign ABI (32-bit
/// or x32 entry points) kills the process: nothing legitimate in this process uses them and
/// they would otherwise bypass the per-number checks.
/// </summary>
public static partial class SeccompFilter
{
    // Linux uapi constants (linux/prctl.h, linux/seccomp.h, linux/audit.h, linux/filter.h).
    private const int PrSetNoNewPrivs = 38;
    private const uint SeccompSetModeFilter = 1;
    private const uint SeccompFilterFlagTsync = 1;
    private const uint RetKillProcess = 0x80000000;
    private const uint RetErrno = 0x00050000;
    private const uint RetAllow = 0x7fff0000;
    private const uint Eperm = 1;
    private const uint AuditArchX8664 = 0xC000003E;
    private const uint AuditArchAarch64 = 0xC00000B7;
    private const uint X32SyscallBit = 0x40000000;
    private const ushort LdWAbs = 0x20;   // BPF_LD | BPF_W | BPF_ABS
    private const ushort JeqK = 0x15;     // BPF_JMP | BPF_JEQ | BPF_K
    private const ushort JgeK = 0x35;     // BPF_JMP | BPF_JGE | BPF_K
    private const ushort RetK = 0x06;     // BPF_RET | BPF_K
    private const uint OffsetNr = 0;      // struct seccomp_data.nr
    private const uint OffsetArch = 4;    // struct seccomp_data.arch

    /// <summary>The blocked syscalls, by name, in the order they are checked (same set as slirp4netns 1.2).</summary>
    public static IReadOnlyList<string> BlockedSyscallNames { get; } =
    [
        "execve", "lookup_dcookie", "pidfd_getfd", "ptrace", "process_vm_readv", "process_vm_writev",
        "delete_module", "finit_module", "init_module", "chroot", "fsconfig", "fsmount", "fsopen",
        "fspick", "mount", "move_mount", "open_tree", "pivot_root", "umount2", "open_by_handle_at",
        "execveat", "pidfd_open", "pidfd_send_signal", "prctl", "setns", "unshare", "kexec_file_load",
        "kexec_load", "reboot", "name_to_handle_at",
    ];

    // Syscall numbers in BlockedSyscallNames order (arch/x86/entry/syscalls/syscall_64.tbl).
    private static readonly uint[] X8664Numbers =
    [
        59, 212, 438, 101, 310, 311, 176, 313, 175, 161, 431, 432, 430, 433, 165, 429, 428, 155, 166, 304,
        322, 434, 424, 157, 308, 272, 320, 246, 169, 303,
    ];

    // Same order, include/uapi/asm-generic/unistd.h (used by arm64).
    private static readonly uint[] Aarch64Numbers =
    [
        221, 18, 438, 117, 270, 271, 106, 273, 105, 51, 431, 432, 430, 433, 40, 429, 428, 41, 39, 265,
        281, 434, 424, 167, 268, 97, 294, 104, 142, 264,
    ];

    /// <summary>
    /// The line slirp4netns prints on stdout after loading its filter
    /// (<c>seccomp: The following syscalls are blocked: execve ...</c>), without the newline.
    /// </summary>
    public static string Describe() => "seccomp: The following syscalls are blocked: " + string.Join(' ', BlockedSyscallNames);

    /// <summary>
    /// Sets <c>PR_SET_NO_NEW_PRIVS</c> and loads the filter on all threads of the process
    /// (<c>SECCOMP_FILTER_FLAG_TSYNC</c>), so threads the runtime already started are covered too.
    /// Irreversible. Returns false with a one-line reason when the architecture is unsupported or
    /// the kernel refuses.
    /// </summary>
    public static bool TryInstall(out string? error)
    {
        var (auditArch, seccompNr) = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => (AuditArchX8664, 317L),
            Architecture.Arm64 => (AuditArchAarch64, 277L),
            _ => (0u, 0L),
        };
        if (auditArch == 0 || !OperatingSystem.IsLinux())
        {
            error = $"seccomp: unsupported architecture {RuntimeInformation.ProcessArchitecture}";
            return false;
        }

        SockFilter[] program = BuildProgram(auditArch);
        if (Prctl(PrSetNoNewPrivs, 1, 0, 0, 0) != 0)
        {
            error = "seccomp: prctl(PR_SET_NO_NEW_PRIVS): " + Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());
            return false;
        }

        unsafe
        {
            fixed (SockFilter* filter = program)
            {
                var fprog = new SockFprog { Len = (ushort)program.Length, Filter = filter };
                long rc = Syscall3(seccompNr, SeccompSetModeFilter, SeccompFilterFlagTsync, (nint)(&fprog));
                if (rc < 0)
                {
                    error = "seccomp: seccomp(SECCOMP_SET_MODE_FILTER): " + Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());
                    return false;
                }

                if (rc > 0)
                {
                    // TSYNC reports the id of a thread that could not be synchronised.
                    error = $"seccomp: thread {rc} could not be synchronised";
                    return false;
                }
            }
        }

        error = null;
        return true;
    }

    /// <summary>Builds the classic-BPF program for one architecture (visible for tests).</summary>
    internal static SockFilter[] BuildProgram(uint auditArch)
    {
        uint[] numbers = auditArch == AuditArchX8664 ? X8664Numbers : Aarch64Numbers;
        var program = new List<SockFilter>(numbers.Length + 8);

        // Layout: [0] load arch; [1] arch ok? else kill; [2] load nr; [3] (x86-64) x32 bit -> deny;
        // then one JEQ per number jumping to the deny return; then allow; deny; kill.
        program.Add(new SockFilter(LdWAbs, 0, 0, OffsetArch));
        int checksStart = auditArch == AuditArchX8664 ? 4 : 3;
        int allowIndex = checksStart + numbers.Length;
        int denyIndex = allowIndex + 1;
        int killIndex = denyIndex + 1;
        program.Add(new SockFilter(JeqK, 0, checked((byte)(killIndex - 2)), auditArch));
        program.Add(new SockFilter(LdWAbs, 0, 0, OffsetNr));
        if (auditArch == AuditArchX8664)
        {
            program.Add(new SockFilter(JgeK, checked((byte)(killIndex - 4)), 0, X32SyscallBit));
        }

        for (int i = 0; i < numbers.Length; i++)
        {
            int here = checksStart + i;
            program.Add(new SockFilter(JeqK, checked((byte)(denyIndex - here - 1)), 0, numbers[i]));
        }

        program.Add(new SockFilter(RetK, 0, 0, RetAllow));
        program.Add(new SockFilter(RetK, 0, 0, RetErrno | Eperm));
        program.Add(new SockFilter(RetK, 0, 0, RetKillProcess));
        return [.. program];
    }

    /// <summary>One classic BPF instruction (struct sock_filter).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal readonly record struct SockFilter(ushort Code, byte Jt, byte Jf, uint K);

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct SockFprog
    {
        public ushort Len;
        public SockFilter* Filter;
    }

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall3(long number, nuint arg1, nuint arg2, nint arg3);
}
