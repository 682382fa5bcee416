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
}
