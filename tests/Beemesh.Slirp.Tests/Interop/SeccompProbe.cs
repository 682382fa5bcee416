using System.Diagnostics;
using System.Runtime.InteropServices;
using Beemesh.Netstack.Interop;

namespace Beemesh.Slirp.Tests.Interop;

/// <summary>
/// Runs inside a child process (never the test host): installs the filter, then checks from the
/// main thread and from a thread started before installation that blocked syscalls fail with
/// EPERM while ordinary ones still work. Prints one line per check; exit code 0 when all pass.
/// </summary>
internal static partial class SeccompProbe
{
    private const int Eperm = 1;
    private const int CloneNewUser = 0x10000000;
    private const int PrGetDumpable = 3;

    public static int Run()
    {
        using var installed = new ManualResetEventSlim();
        int threadErrno = 0;
        int threadRc = 0;
        var early = new Thread(() =>
        {
            installed.Wait();
            threadRc = Unshare(CloneNewUser);
            threadErrno = Marshal.GetLastPInvokeError();
        });
        early.Start();

        if (!SeccompFilter.TryInstall(out string? error))
        {
            Console.WriteLine("install failed: " + error);
            installed.Set();
            early.Join();
            return 2;
        }

        installed.Set();
        early.Join();
        int failures = 0;
        void Check(string name, bool ok)
        {
            Console.WriteLine((ok ? "ok " : "FAIL ") + name);
            failures += ok ? 0 : 1;
        }

        int rc = Prctl(PrGetDumpable, 0, 0, 0, 0);
        Check("prctl blocked with EPERM", rc == -1 && Marshal.GetLastPInvokeError() == Eperm);
        Check("unshare on a thread started before install blocked with EPERM", threadRc == -1 && threadErrno == Eperm);
        Check("getpid still works", Getpid() == Environment.ProcessId);
        Check("files still open", File.ReadAllText("/proc/self/status").Contains("Seccomp:\t2", StringComparison.Ordinal));
        Check("no_new_privs set", File.ReadAllText("/proc/self/status").Contains("NoNewPrivs:\t1", StringComparison.Ordinal));
        bool execBlocked;
        try
        {
            using Process? child = Process.Start(new ProcessStartInfo("/bin/true") { UseShellExecute = false });
            child?.WaitForExit();
            execBlocked = false;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            execBlocked = true;
        }

        Check("execve blocked", execBlocked);
        return failures == 0 ? 0 : 1;
    }

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int Prctl(int option, nuint a2, nuint a3, nuint a4, nuint a5);

    [LibraryImport("libc", EntryPoint = "unshare", SetLastError = true)]
    private static partial int Unshare(int flags);

    [LibraryImport("libc", EntryPoint = "getpid")]
    private static partial int Getpid();
}
