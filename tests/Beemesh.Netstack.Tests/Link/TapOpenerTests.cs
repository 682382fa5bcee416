using System.Diagnostics;
using Beemesh.Netstack.Link;

namespace Beemesh.Netstack.Tests.Link;

/// <summary><c>beemesh-nsenter tap</c> through <see cref="TapOpener"/>, against namespaces the tests create.</summary>
public sealed class TapOpenerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private static readonly byte[] GuestAddress = [10, 0, 2, 100];
    private static readonly byte[] GatewayAddress = [10, 0, 2, 2];

    /// <summary>A process in its own user + network namespace, like a rootless container's.</summary>
    private sealed class NamespacedSleeper : IDisposable
    {
        public NamespacedSleeper()
        {
            // "ready" is printed after unshare(1) has switched namespaces, so the pid is usable from then on.
            var start = new ProcessStartInfo("unshare", ["--user", "--map-root-user", "--net", "sh", "-c", "echo ready; exec sleep 30"])
            {
                RedirectStandardOutput = true,
            };
            Process = Process.Start(start)!;
            Assert.Equal("ready", Process.StandardOutput.ReadLine());
        }

        public Process Process { get; }

        public void Dispose()
        {
            Process.Kill();
            Process.WaitForExit();
            Process.Dispose();
        }
    }

    /// <summary>A named network namespace under /run/netns (owned by our user namespace).</summary>
    private sealed class NamedNetns : IDisposable
    {
        public NamedNetns()
        {
            Name = "beemesh-test-" + Guid.NewGuid().ToString("N")[..8];
            var (exitCode, output) = Commands.Run("ip", "netns", "add", Name);
            Assert.True(exitCode == 0, output);
        }

        public string Name { get; }

        public string Path => "/run/netns/" + Name;

        public void Dispose() => Commands.Run("ip", "netns", "del", Name);
    }

    [SkippableFact]
    public void Open_ByPid_ConfiguresTapInsideTheProcessNamespaces()
    {
        NsenterBinary.SkipUnlessPrivileged();
        using var target = new NamespacedSleeper();
        var request = new TapOpenRequest
        {
            NsenterPath = NsenterBinary.Path,
            Pid = target.Process.Id,
            Configure = true,
            Mtu = 1500,
            Mac = "02:00:00:00:00:64",
        };

        using TapHandle tap = TapOpener.Open(request, Timeout);

        Assert.False(tap.IsInvalid);
        Assert.True(TapFrames.IsNonBlocking(tap));
        string pid = target.Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var (exitCode, output) = Commands.Run("nsenter", "-t", pid, "-U", "-n", "sh", "-c", "ip -o addr show tap0; ip route");
        Assert.Equal(0, exitCode);
        Assert.Contains("inet 10.0.2.100/24", output);
        Assert.Contains("default via 10.0.2.2 dev tap0", output);
        // Nothing of it leaked into our own namespace.
        Assert.NotEqual(0, Commands.Run("ip", "link", "show", "tap0").ExitCode);
        AssertKernelAnswersArp(tap);
    }

    [SkippableFact]
    public void Open_ByPid_Unconfigured_ReadGivesEagain()
    {
        NsenterBinary.SkipUnlessPrivileged();
        using var target = new NamespacedSleeper();

        using TapHandle tap = TapOpener.Open(new TapOpenRequest { NsenterPath = NsenterBinary.Path, Pid = target.Process.Id }, Timeout);

        // The device is down, so nothing is queued: a non-blocking read must not block.
        Assert.Equal(-TapFrames.Eagain, TapFrames.Read(tap, new byte[2048]));
        Assert.False(tap.VnetHeader);
        Assert.False(tap.Offload);
    }

    [SkippableFact]
    public void Open_ByNetnsPath_CreatesTapInThatNamespace()
    {
        NsenterBinary.SkipUnlessPrivileged();
        using var netns = new NamedNetns();
        var request = new TapOpenRequest
        {
            NsenterPath = NsenterBinary.Path,
            NetnsPath = netns.Path,
            TapName = "tapx",
            VnetHeader = true,
            Configure = true,
            Address = "10.0.2.100/24",
        };

        using (TapHandle tap = TapOpener.Open(request, Timeout))
        {
            var (exitCode, output) = Commands.Run("ip", "-n", netns.Name, "-o", "addr", "show", "tapx");
            Assert.Equal(0, exitCode);
            Assert.Contains("inet 10.0.2.100/24", output);
            Assert.True(tap.VnetHeader);
            Assert.Equal("tapx", tap.Name);
        }

        // Closing the only fd removes the non-persistent tap.
        Assert.NotEqual(0, Commands.Run("ip", "-n", netns.Name, "link", "show", "tapx").ExitCode);
    }

    [SkippableFact]
    public void Open_BadPid_ReportsNoSuchProcess()
    {
        NsenterBinary.SkipUnlessPrivileged();

        var error = Assert.Throws<TapOpenException>(
            () => TapOpener.Open(new TapOpenRequest { NsenterPath = NsenterBinary.Path, Pid = int.MaxValue - 1 }, Timeout));

        Assert.Equal(1, error.ExitCode);
        Assert.Equal($"no process with pid {int.MaxValue - 1}", error.HelperMessage);
        Assert.Contains("exit 1", error.Message);
    }

    [SkippableFact]
    public void Open_MissingNetnsPath_ReportsThePath()
    {
        NsenterBinary.SkipUnlessPrivileged();

        var error = Assert.Throws<TapOpenException>(
            () => TapOpener.Open(new TapOpenRequest { NsenterPath = NsenterBinary.Path, NetnsPath = "/run/netns/beemesh-absent" }, Timeout));

        Assert.Equal(1, error.ExitCode);
        Assert.Equal("cannot open network namespace /run/netns/beemesh-absent: No such file or directory", error.HelperMessage);
    }

    [SkippableFact]
    public void Open_PathThatIsNotANetworkNamespace_IsRefused()
    {
        NsenterBinary.SkipUnlessPrivileged();

        var error = Assert.Throws<TapOpenException>(
            () => TapOpener.Open(new TapOpenRequest { NsenterPath = NsenterBinary.Path, NetnsPath = "/proc/self/ns/user" }, Timeout));

        Assert.Equal("/proc/self/ns/user is not a network namespace", error.HelperMessage);
    }

    [SkippableFact]
    public void Open_TapNameInUse_IsRefused()
    {
        NsenterBinary.SkipUnlessPrivileged();
        using var target = new NamespacedSleeper();
        var request = new TapOpenRequest { NsenterPath = NsenterBinary.Path, Pid = target.Process.Id };
        using TapHandle first = TapOpener.Open(request, Timeout);

        var error = Assert.Throws<TapOpenException>(() => TapOpener.Open(request, Timeout));

        Assert.Equal("cannot create tap device tap0: a device with that name is already in use", error.HelperMessage);
    }

    [Fact]
    public void Open_MissingHelper_Throws()
    {
        var error = Assert.Throws<TapOpenException>(
            () => TapOpener.Open(new TapOpenRequest { NsenterPath = "/nonexistent/beemesh-nsenter", Pid = 1 }, Timeout));

        Assert.Contains("cannot start /nonexistent/beemesh-nsenter", error.Message);
        Assert.Null(error.ExitCode);
    }

    [Fact]
    public void Open_HelperThatNeverAnswers_TimesOutAndIsKilled()
    {
        string script = Path.Combine(Path.GetTempPath(), "beemesh-silent-" + Guid.NewGuid().ToString("N"));
        File.WriteAllText(script, "#!/bin/sh\nexec sleep 30\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        try
        {
            var error = Assert.Throws<TapOpenException>(
                () => TapOpener.Open(new TapOpenRequest { NsenterPath = script, Pid = 1 }, TimeSpan.FromMilliseconds(200)));

            Assert.Contains("timed out", error.Message);
            Assert.Null(error.ExitCode);
        }
        finally
        {
            File.Delete(script);
        }
    }

    [Fact]
    public void Open_NeitherPidNorPath_IsAnArgumentError()
    {
        Assert.Throws<ArgumentException>(() => TapOpener.Open(new TapOpenRequest(), Timeout));
        Assert.Throws<ArgumentException>(() => TapOpener.Open(new TapOpenRequest { Pid = 1, NetnsPath = "/x" }, Timeout));
    }

    /// <summary>Writes an ARP request for the guest address and expects the guest kernel's reply.</summary>
    private static void AssertKernelAnswersArp(TapHandle tap)
    {
        byte[] request = TapFrames.ArpRequest(GatewayAddress, GuestAddress);
        Assert.Equal(request.Length, TapFrames.Write(tap, request));

        var buffer = new byte[2048];
        long deadline = Stopwatch.GetTimestamp() + 5 * Stopwatch.Frequency;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (!TapFrames.WaitReadable(tap, 500))
            {
                continue;
            }
            int length = TapFrames.Read(tap, buffer);
            if (length == -TapFrames.Eagain)
            {
                continue;
            }
            Assert.True(length > 0, $"read failed: errno {-length}");
            // Skip IPv6 router solicitations and the like; look for the ARP reply to us.
            if (length >= 42 && buffer[12] == 0x08 && buffer[13] == 0x06 && buffer[21] == 2)
            {
                Assert.Equal(TapFrames.StackMac, buffer[0..6]);
                Assert.Equal(new byte[] { 0x02, 0, 0, 0, 0, 0x64 }, buffer[6..12]); // the --mac we set
                Assert.Equal(GuestAddress, buffer[28..32]);
                return;
            }
        }
        Assert.Fail("no ARP reply from the guest kernel");
    }
}
