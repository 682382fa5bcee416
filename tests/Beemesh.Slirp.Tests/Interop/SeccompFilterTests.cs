using System.Diagnostics;
using System.Runtime.InteropServices;
using Beemesh.Netstack.Interop;

namespace Beemesh.Slirp.Tests.Interop;

public sealed class SeccompFilterTests
{
    [Fact]
    public void Describe_ListsTheSlirp4netnsSet()
    {
        string line = SeccompFilter.Describe();

        Assert.StartsWith("seccomp: The following syscalls are blocked: execve ", line, StringComparison.Ordinal);
        Assert.Equal(30, SeccompFilter.BlockedSyscallNames.Count);
        Assert.Contains("ptrace", SeccompFilter.BlockedSyscallNames);
        Assert.Contains("setns", SeccompFilter.BlockedSyscallNames);
    }

    [SkippableFact]
    public void Install_InAChildProcess_BlocksOnEveryThread()
    {
        Skip.IfNot(RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64, "seccomp filter supports x86-64 and arm64 only");
        string assembly = typeof(SeccompFilterTests).Assembly.Location;
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(assembly);
        start.ArgumentList.Add(TestEntryPoint.SeccompProbeFlag);

        using Process process = Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(60_000), "probe did not finish");

        Assert.True(process.ExitCode == 0, stdout + stderr.Result);
        Assert.Contains("ok execve blocked", stdout, StringComparison.Ordinal);
        Assert.Contains("ok unshare on a thread started before install blocked with EPERM", stdout, StringComparison.Ordinal);
    }
}
