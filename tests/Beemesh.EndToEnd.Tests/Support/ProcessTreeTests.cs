using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Beemesh.EndToEnd.Tests.Support;

public partial class ProcessTreeTests
{
    private const long PidfdOpen = 434; // x86-64 and arm64 alike
    private const short PollIn = 1;

    [SkippableFact]
    public async Task Kill_ends_a_process_and_its_descendants_and_stops_none()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64, "pidfd_open(2) as syscall 434: Linux on x86-64 or arm64");
        var info = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardInput = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("sleep 600 & sh -c 'sleep 600 & echo inner; wait' & echo outer; wait");
        using Process root = Process.Start(info)!;
        // Each shell says so once it has started its children.
        string?[] lines = [await root.StandardOutput.ReadLineAsync(), await root.StandardOutput.ReadLineAsync()];
        Assert.Equal(["inner", "outer"], lines.Order());

        // sh, two children (sleep, sh) and a grandchild (sleep), listed before any is killed.
        List<int> tree = ProcessTree.Of(root.Id);
        Assert.Equal(root.Id, tree[0]);
        Assert.True(tree.Count == 4, $"tree {string.Join(' ', tree)}");

        // A pidfd per process (before the kill, so no reused pid is watched) turns readable once it ended.
        int[] pidfds = [.. tree.Select(p => PidFd(p))];
        try
        {
            Assert.Equal(tree, ProcessTree.Kill(root.Id));
            Assert.All(tree, p => Assert.NotEqual('T', ProcessTree.StateOf(p) ?? 'X'));
            await root.WaitForExitAsync();
            for (int i = 0; i < tree.Count; i++)
            {
                // A generous bound: the wait is on the process's end, not on a clock.
                Assert.True(Ended(pidfds[i], TimeSpan.FromSeconds(30)), $"process {tree[i]} did not end (state {ProcessTree.StateOf(tree[i])})");
            }
        }
        finally
        {
            foreach (int fd in pidfds)
            {
                _ = close(fd);
            }
        }

        // Killing a tree that is gone does nothing.
        Assert.Equal([root.Id], ProcessTree.Kill(root.Id));
    }

    private static int PidFd(int pid)
    {
        int fd = (int)syscall(PidfdOpen, pid, 0);
        Assert.True(fd >= 0, $"pidfd_open({pid}): errno {Marshal.GetLastPInvokeError()}");
        return fd;
    }

    private static bool Ended(int pidfd, TimeSpan timeout)
    {
        var fds = new PollFd[] { new() { Fd = pidfd, Events = PollIn } };
        int ready;
        while ((ready = poll(fds, 1, (int)timeout.TotalMilliseconds)) < 0 && Marshal.GetLastPInvokeError() == 4)
        {
            // EINTR: poll again
        }

        return ready == 1 && (fds[0].Revents & PollIn) != 0;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, int pid, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll([In, Out] PollFd[] fds, ulong count, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
