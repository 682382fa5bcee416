using Beemesh.Netstack.Link;

namespace Beemesh.Netstack.Tests.Link;

/// <summary><c>beemesh-nsenter run</c> through <see cref="TapRunner"/>, in real namespaces.</summary>
public sealed class TapRunnerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private static TapRunRequest Request(params string[] command) => new()
    {
        NsenterPath = NsenterBinary.Path,
        Command = command,
        RedirectStandardOutput = true,
    };

    private static async Task<(int ExitCode, string Output)> RunToEnd(TapRunner runner)
    {
        runner.Release();
        string output = await runner.Process.StandardOutput.ReadToEndAsync();
        int exitCode = await runner.WaitForExitAsync().WaitAsync(Timeout);
        return (exitCode, output);
    }

    [SkippableFact]
    public async Task Run_ConfiguresAddressMtuMacAndDefaultRoute()
    {
        NsenterBinary.SkipUnlessPrivileged();
        var request = Request("sh", "-c", "ip -o addr show tap0; ip -o link show tap0; ip -o link show lo; ip route") with
        {
            Mtu = 1400,
            Address = "10.0.2.100/24",
            Gateway = "10.0.2.2",
            Mac = "02:11:22:33:44:55",
        };
        using TapRunner runner = TapRunner.Start(request, Timeout);

        var (exitCode, output) = await RunToEnd(runner);

        Assert.Equal(0, exitCode);
        Assert.Contains("inet 10.0.2.100/24", output);
        Assert.Contains("mtu 1400", output);
        Assert.Contains("link/ether 02:11:22:33:44:55", output);
        Assert.Contains("default via 10.0.2.2 dev tap0", output);
        Assert.Matches(@"lo: <LOOPBACK,UP", output);
        Assert.Equal("tap0", runner.Tap.Name);
        Assert.False(runner.Tap.VnetHeader);
        Assert.True(TapFrames.IsNonBlocking(runner.Tap));
    }

    [SkippableFact]
    public async Task Run_ListenPorts_AreSocketsInsideTheCommandsNamespaceThatItCanReachButNotBind()
    {
        NsenterBinary.SkipUnlessPrivileged();
        // The command connects to its own 127.0.0.1:3500, then tries to bind that port itself.
        const string Script = """
            python3 -c '
            import socket
            c = socket.create_connection(("127.0.0.1", 3500), timeout=10)
            c.sendall(b"from-the-guest")
            c.close()
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", 3500)); print("bind=ok")
            except OSError as e:
                print("bind=refused")
            '
            """;
        using TapRunner runner = TapRunner.Start(Request("sh", "-c", Script) with { ListenPorts = [3500] }, Timeout);
        using var listener = new System.Net.Sockets.Socket(new System.Net.Sockets.SafeSocketHandle(runner.TakeListener(3500), ownsHandle: true));
        Assert.Throws<KeyNotFoundException>(() => runner.TakeListener(3500));
        // Bound (in the command's namespace) before the command starts.
        Assert.Equal(3500, ((System.Net.IPEndPoint)listener.LocalEndPoint!).Port);

        runner.Release();
        using System.Net.Sockets.Socket accepted = await listener.AcceptAsync().WaitAsync(Timeout);
        byte[] buffer = new byte[64];
        int total = 0;
        int read;
        while ((read = await accepted.ReceiveAsync(buffer.AsMemory(total)).AsTask().WaitAsync(Timeout)) > 0)
        {
            total += read;
        }

        string output = await runner.Process.StandardOutput.ReadToEndAsync();
        int exitCode = await runner.WaitForExitAsync().WaitAsync(Timeout);
        Assert.Equal("from-the-guest", System.Text.Encoding.ASCII.GetString(buffer, 0, total));
        Assert.Equal(0, exitCode);
        Assert.Contains("bind=refused", output);
    }

    [SkippableFact]
    public async Task Run_CommandRunsAsMappedRootAndItsExitCodeIsReturned()
    {
        NsenterBinary.SkipUnlessPrivileged();
        using TapRunner runner = TapRunner.Start(Request("sh", "-c", "id -u; cat /proc/self/uid_map; exit 7"), Timeout);

        var (exitCode, output) = await RunToEnd(runner);

        Assert.Equal(7, exitCode);
        Assert.StartsWith("0\n", output);
        Assert.Matches(@"^\s*0\s+0\s+1\s*$", output.Split('\n')[1]);
    }

    [SkippableFact]
    public async Task Run_Ipv6_AcceptsRouterAdvertisements()
    {
        NsenterBinary.SkipUnlessPrivileged();
        using TapRunner runner = TapRunner.Start(
            Request("sh", "-c", "cat /proc/sys/net/ipv6/conf/tap0/accept_ra /proc/sys/net/ipv6/conf/tap0/disable_ipv6") with { Ipv6 = true },
            Timeout);

        var (exitCode, output) = await RunToEnd(runner);

        Assert.Equal(0, exitCode);
        Assert.Equal(["2", "0"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [SkippableFact]
    public async Task Run_VnetHeader_ReportsHeaderAndOffload()
    {
        NsenterBinary.SkipUnlessPrivileged();
        using TapRunner runner = TapRunner.Start(
            Request("sh", "-c", "ip -o link show tap7") with { VnetHeader = true, TapName = "tap7" }, Timeout);

        var (exitCode, output) = await RunToEnd(runner);

        Assert.Equal(0, exitCode);
        Assert.Contains("tap7", output);
        Assert.True(runner.Tap.VnetHeader);
        Assert.Equal(TapHandle.VirtioNetHeaderLength, runner.Tap.HeaderLength);
        // The design relies on TUNSETOFFLOAD working in an unprivileged user namespace on these machines.
        Assert.True(runner.Tap.Offload);
    }

    [SkippableFact]
    public void Run_DisposeBeforeRelease_EndsTheHelperWithoutRunningTheCommand()
    {
        NsenterBinary.SkipUnlessPrivileged();
        string marker = Path.Combine(Path.GetTempPath(), "beemesh-run-" + Guid.NewGuid().ToString("N"));
        TapRunner runner = TapRunner.Start(Request("touch", marker), Timeout);
        int pid = runner.Process.Id;

        runner.Dispose();

        Assert.False(File.Exists(marker));
        Assert.False(Directory.Exists("/proc/" + pid)); // exited and reaped
    }

    [SkippableFact]
    public void Run_BadGateway_SurfacesTheHelperMessage()
    {
        NsenterBinary.SkipUnlessPrivileged();
        var request = Request("true") with { Gateway = "192.168.7.1" };

        var error = Assert.Throws<TapOpenException>(() => TapRunner.Start(request, Timeout));

        Assert.Equal(1, error.ExitCode);
        Assert.Equal("--gateway must be inside the --address subnet", error.HelperMessage);
        Assert.Contains(error.HelperMessage!, error.Message);
    }

    [SkippableFact]
    public async Task Run_HideDirectory_CoversItWithTheGivenDirectoryReadOnlyAndLocked()
    {
        NsenterBinary.SkipUnlessPrivileged();
        DirectoryInfo hidden = Directory.CreateTempSubdirectory("beemesh-hidden-");
        try
        {
            File.WriteAllText(Path.Combine(hidden.FullName, "secret.key"), "SECRET");
            DirectoryInfo shown = hidden.CreateSubdirectory("shown");
            File.WriteAllText(Path.Combine(shown.FullName, "visible"), "ok");
            string dir = hidden.FullName;
            var request = Request("sh", "-c",
                $"ls -A {dir}; echo ---; cat {dir}/secret.key; echo cat=$?; touch {dir}/new 2>/dev/null; echo touch=$?; " +
                $"umount {dir} 2>/dev/null; echo umount=$?; umount -l {dir} 2>/dev/null; echo lazy=$?; ls -A {dir}") with
            {
                HideDirectory = dir,
                HideDirectoryWith = shown.FullName,
            };
            using TapRunner runner = TapRunner.Start(request, Timeout);

            var (exitCode, output) = await RunToEnd(runner);

            Assert.Equal(0, exitCode);
            string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(["visible", "---"], lines[..2]);
            Assert.DoesNotContain("SECRET", output);
            Assert.Contains("cat=1", lines);
            Assert.DoesNotContain("touch=0", lines);
            Assert.DoesNotContain("umount=0", lines);
            Assert.DoesNotContain("lazy=0", lines);
            Assert.Equal("visible", lines[^1]);
            Assert.True(File.Exists(Path.Combine(dir, "secret.key"))); // only the command's view changed
        }
        finally
        {
            hidden.Delete(recursive: true);
        }
    }

    [SkippableFact]
    public async Task Run_HideDirectoryAlone_ShowsAnEmptyDirectory()
    {
        NsenterBinary.SkipUnlessPrivileged();
        DirectoryInfo hidden = Directory.CreateTempSubdirectory("beemesh-hidden-");
        try
        {
            File.WriteAllText(Path.Combine(hidden.FullName, "ca.key"), "SECRET");
            using TapRunner runner = TapRunner.Start(
                Request("sh", "-c", $"echo [$(ls -A {hidden.FullName})]") with { HideDirectory = hidden.FullName }, Timeout);

            var (exitCode, output) = await RunToEnd(runner);

            Assert.Equal(0, exitCode);
            Assert.Equal("[]\n", output);
        }
        finally
        {
            hidden.Delete(recursive: true);
        }
    }

    [SkippableFact]
    public async Task Run_CommandSeesItsOwnPidNamespaceAndEnvironment()
    {
        NsenterBinary.SkipUnlessPrivileged();
        using TapRunner runner = TapRunner.Start(
            Request("sh", "-c", "echo pid=$$; ls /proc | grep -c '^[0-9]'; echo env=$BEEMESH_TEST_VALUE") with
            {
                Environment = new Dictionary<string, string> { ["BEEMESH_TEST_VALUE"] = "from-request" },
            },
            Timeout);

        var (exitCode, output) = await RunToEnd(runner);

        Assert.Equal(0, exitCode);
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("pid=2", lines[0]); // init is 1, the command 2
        Assert.True(int.Parse(lines[1]) <= 4, $"the command sees host processes: {lines[1]} pids in /proc");
        Assert.Equal("env=from-request", lines[2]);
    }

    [SkippableFact]
    public async Task Run_SignalToTheHelperReachesTheCommand_AndItsStatusIsReturned()
    {
        NsenterBinary.SkipUnlessPrivileged();
        using TapRunner runner = TapRunner.Start(
            Request("sh", "-c", "trap 'echo got-usr1; exit 42' USR1; echo ready; while :; do sleep 0.1; done"), Timeout);
        runner.Release();
        string? ready = await runner.Process.StandardOutput.ReadLineAsync().WaitAsync(Timeout);
        Assert.Equal("ready", ready);

        Beemesh.Netstack.Interop.Sys.kill(runner.Process.Id, 10); // SIGUSR1
        string rest = await runner.Process.StandardOutput.ReadToEndAsync().WaitAsync(Timeout);
        int exitCode = await runner.WaitForExitAsync().WaitAsync(Timeout);

        Assert.Equal("got-usr1\n", rest);
        Assert.Equal(42, exitCode);
    }

    [SkippableFact]
    public async Task Run_CommandKilledBySignal_Returns128PlusSignal()
    {
        NsenterBinary.SkipUnlessPrivileged();
        using TapRunner runner = TapRunner.Start(Request("sh", "-c", "kill -TERM $$"), Timeout);

        var (exitCode, _) = await RunToEnd(runner);

        Assert.Equal(128 + 15, exitCode);
    }

    [SkippableFact]
    public async Task Run_DisposeAfterRelease_KillsEveryProcessOfTheCommand()
    {
        NsenterBinary.SkipUnlessPrivileged();
        string marker = "beemesh-marker-" + Guid.NewGuid().ToString("N");
        // A background child that ignores TERM and HUP, as a daemon would; the forked shells keep
        // the script, and so the marker, in their command lines.
        TapRunner runner = TapRunner.Start(
            Request("sh", "-c", $": {marker}; (trap '' TERM HUP; while :; do sleep 1; done) & echo ready; wait"), Timeout);
        runner.Release();
        Assert.Equal("ready", await runner.Process.StandardOutput.ReadLineAsync().WaitAsync(Timeout));
        Assert.NotEmpty(ProcessesWithMarker(marker));

        runner.Dispose();

        Assert.Empty(ProcessesWithMarker(marker));
    }

    /// <summary>Pids whose command line contains <paramref name="marker"/>.</summary>
    internal static List<int> ProcessesWithMarker(string marker)
    {
        var found = new List<int>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
            {
                continue;
            }
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "cmdline")).Contains(marker, StringComparison.Ordinal))
                {
                    found.Add(pid);
                }
            }
            catch (IOException)
            {
                // exited while we looked
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        return found;
    }
}
