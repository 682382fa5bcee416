using System.Diagnostics;
using System.Text;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Slirp;

/// <summary>
/// The API socket under abuse: duplicate forwards refused with slirp4netns's exact text (side by side),
/// and a flood of idle clients from one process that must not keep another process's request waiting.
/// </summary>
[Collection("namespaces")]
public sealed class SlirpApiLimitTests(ITestOutputHelper output)
{
    private const string AddFailed = "{\"error\":{\"desc\":\"bad request: add_hostfwd: slirp_add_hostfwd failed\"}}";

    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Second_udp_forward_for_the_same_host_port_is_refused_with_the_reference_text(string implementation)
    {
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(implementation, output);
        int port = FreeUdpPort();

        string first = await sandbox.ApiAsync(Add("udp", "127.0.0.1", port));
        string again = await sandbox.ApiAsync(Add("udp", "127.0.0.1", port));
        string wildcard = await sandbox.ApiAsync(Add("udp", "0.0.0.0", port));
        string list = await sandbox.ApiAsync("{\"execute\":\"list_hostfwd\"}");
        CommandResult sockets = await HostCommand.RunAsync(TimeSpan.FromSeconds(10), "ss", "-Hnulp", $"sport = :{port}");

        Assert.Equal("{\"return\":{\"id\":1}}", first);
        Assert.Equal(AddFailed, again);
        Assert.Equal(AddFailed, wildcard);
        Assert.Equal(1, CountOf(list, "\"id\":"));
        Assert.Single(sockets.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [SkippableFact]
    public async Task Hundred_idle_clients_of_one_process_leave_room_for_another_process()
    {
        // Only beemesh-slirp: slirp4netns reads each API connection with a blocking read on its only
        // thread, so one idle client stops it altogether.
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(SlirpImplementation.Beemesh, output);
        const string script = """
            import socket, sys
            path = sys.argv[1]
            conns = []
            for _ in range(100):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                conns.append(s)
            told = 0
            for s in conns:
                s.settimeout(0.5)
                try:
                    if b"too many connections" in s.recv(4096):
                        told += 1
                except socket.timeout:
                    pass
            print(f"told {told}", flush=True)
            sys.stdin.read()
            """;
        using Process flood = HostCommand.Start("python3", ["-c", script, sandbox.ApiSocketPath], out StringBuilder stdout, out StringBuilder stderr);
        try
        {
            string told = await WaitForLineAsync(stdout, stderr, flood, "told ");

            string reply = await sandbox.ApiAsync("{\"execute\":\"list_hostfwd\"}");

            Assert.Equal("{\"entries\":[]}", reply);
            // The flood holds at most the per-caller limit; every connection past it was told why.
            Assert.Equal("told 92", told);
        }
        finally
        {
            HostCommand.Kill(flood);
        }
    }

    private static async Task<string> WaitForLineAsync(StringBuilder stdout, StringBuilder stderr, Process p, string prefix)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            lock (stdout)
            {
                string? line = stdout.ToString().Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
                if (line is not null)
                {
                    return line.Trim();
                }
            }

            if (p.HasExited)
            {
                lock (stderr)
                {
                    throw new Xunit.Sdk.XunitException($"the flood exited with {p.ExitCode}: {stderr}");
                }
            }

            await Task.Delay(20, limit.Token);
        }
    }

    private static string Add(string proto, string hostAddress, int port) =>
        $"{{\"execute\":\"add_hostfwd\",\"arguments\":{{\"proto\":\"{proto}\",\"host_addr\":\"{hostAddress}\",\"host_port\":{port},\"guest_port\":5353}}}}";

    private static int CountOf(string text, string what)
    {
        int count = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + 1, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    private static int FreeUdpPort()
    {
        using var probe = new System.Net.Sockets.UdpClient(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        return ((System.Net.IPEndPoint)probe.Client.LocalEndPoint!).Port;
    }
}
