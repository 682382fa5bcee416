using System.Diagnostics;
using System.Net;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Netstack;

/// <summary>
/// <c>-p</c> port forwarding into the guest. A client on host loopback appears as the gateway
/// 10.0.2.2; a client elsewhere (here: a namespace of the test's own behind a veth pair) keeps its
/// real address, which slirp4netns loses.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class PortForwardTests(ITestOutputHelper output)
{
    private const int GuestPort = 8080;

    [SkippableTheory]
    [InlineData("tcp")]
    [InlineData("udp")]
    public async Task Forwarded_port_shows_the_gateway_for_loopback_clients_and_the_real_address_for_others(string protocol)
    {
        BeemeshEnvironment.RequireReady("python3", "ip");
        using var netns = VethNamespace.Create();
        using var files = new GuestFiles();
        string server = files.Write("peer_server.py", GuestPrograms.PeerServer);
        string client = files.Write("peer_client.py", GuestPrograms.PeerClient);
        bool udp = protocol == "udp";
        int loopbackPort = udp ? GuestFiles.FreeUdpPort(IPAddress.Loopback) : GuestFiles.FreeTcpPort(IPAddress.Loopback);
        int vethPort = udp ? GuestFiles.FreeUdpPort(netns.HostAddress) : GuestFiles.FreeTcpPort(netns.HostAddress);
        string suffix = udp ? "/udp" : "";

        await using var run = BeemeshRun.Start(
            ["-p", $"127.0.0.1:{loopbackPort}:{GuestPort}{suffix}", "-p", $"{netns.HostAddress}:{vethPort}:{GuestPort}{suffix}"],
            $"python3 {server} {protocol} {GuestPort} 2");
        Assert.True(await run.WaitForLineAsync("READY", TimeSpan.FromSeconds(30)), "guest server never got ready: " + run.Stdout);

        string fromLoopback = RunClient(["python3", client, protocol, "127.0.0.1", loopbackPort.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        var fromNamespace = netns.Exec(["python3", client, protocol, netns.HostAddress.ToString(), vethPort.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(30));
        var result = await run.WaitAsync(TimeSpan.FromSeconds(30));

        output.WriteLine($"loopback client got: {fromLoopback}");
        output.WriteLine($"namespace client got: {fromNamespace.Output}");
        output.WriteLine(result.ToString());
        Assert.Equal("peer 10.0.2.2", fromLoopback.Trim());
        Assert.Equal(0, fromNamespace.ExitCode);
        Assert.Equal($"peer {netns.PeerAddress}", fromNamespace.Output.Trim());
        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"peer 10.0.2.2\npeer {netns.PeerAddress}\n", result.Stdout, StringComparison.Ordinal);
    }

    private static string RunClient(IReadOnlyList<string> command)
    {
        var info = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in command.Skip(1))
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            ProcessTree.Kill(process);
        }

        process.WaitForExit();
        return stdout.Result + stderr.Result;
    }
}
