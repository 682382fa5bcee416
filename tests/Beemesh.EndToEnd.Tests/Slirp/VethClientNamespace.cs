using System.Globalization;
using System.Net;
using System.Diagnostics;

namespace Beemesh.EndToEnd.Tests.Slirp;

/// <summary>
/// A second network namespace joined to the host by a veth pair: host side 10.251.N.1/30,
/// client side 10.251.N.2/30, N picked free at random. It stands for a remote client of a
/// port forward, so the test can see which source address the guest gets.
/// </summary>
public sealed class VethClientNamespace : IAsyncDisposable
{
    private readonly Process _namespace;
    private readonly string _hostInterface;

    private VethClientNamespace(Process ns, int pid, int subnet)
    {
        _namespace = ns;
        Pid = pid;
        _hostInterface = $"bmsl{subnet}h";
        HostAddress = IPAddress.Parse($"10.251.{subnet}.1");
        ClientAddress = IPAddress.Parse($"10.251.{subnet}.2");
    }

    /// <summary>The host end's address (bind port forwards here).</summary>
    public IPAddress HostAddress { get; }

    /// <summary>The client end's address (the source the guest should see).</summary>
    public IPAddress ClientAddress { get; }

    /// <summary>PID whose network namespace is the client's.</summary>
    public int Pid { get; }

    /// <summary>Creates the namespace and the veth pair.</summary>
    /// <returns>The ready client namespace.</returns>
    public static async Task<VethClientNamespace> CreateAsync()
    {
        CommandResult used = await HostCommand.RunAsync(TimeSpan.FromSeconds(10), "ip", "-o", "addr");
        int subnet;
        do
        {
            subnet = Random.Shared.Next(1, 255);
        }
        while (used.Stdout.Contains($"10.251.{subnet}.", StringComparison.Ordinal) || used.Stdout.Contains($"bmsl{subnet}h", StringComparison.Ordinal));

        Process ns = HostCommand.Start("unshare", ["--net", "--fork", "sleep", "600"], out _, out _);
        int pid = 0;
        for (int i = 0; i < 500 && pid == 0; i++)
        {
            string children = $"/proc/{ns.Id}/task/{ns.Id}/children";
            string text = File.Exists(children) ? (await File.ReadAllTextAsync(children)).Trim() : "";
            if (text.Length > 0)
            {
                pid = int.Parse(text.Split(' ')[0], CultureInfo.InvariantCulture);
            }
            else
            {
                await Task.Delay(10);
            }
        }

        var client = new VethClientNamespace(ns, pid, subnet);
        try
        {
            Assert.True(pid != 0, "unshare made no child");
            string p = pid.ToString(CultureInfo.InvariantCulture);
            await Must("ip", "link", "add", client._hostInterface, "type", "veth", "peer", "name", $"bmsl{subnet}c", "netns", p);
            await Must("ip", "addr", "add", $"{client.HostAddress}/30", "dev", client._hostInterface);
            await Must("ip", "link", "set", client._hostInterface, "up");
            await Must("nsenter", "-t", p, "-n", "sh", "-c",
                $"ip addr add {client.ClientAddress}/30 dev bmsl{subnet}c && ip link set bmsl{subnet}c up && ip link set lo up");
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs a bash script in the client's network namespace.</summary>
    /// <param name="script">The script.</param>
    /// <returns>Exit code and output.</returns>
    public Task<CommandResult> RunAsync(string script) =>
        HostCommand.RunAsync(TimeSpan.FromSeconds(15), "nsenter", "-t", Pid.ToString(CultureInfo.InvariantCulture), "-n", "bash", "-c", script);

    /// <summary>Deletes the veth pair and kills the namespace.</summary>
    public async ValueTask DisposeAsync()
    {
        await HostCommand.RunAsync(TimeSpan.FromSeconds(10), "ip", "link", "del", _hostInterface);
        HostCommand.Kill(_namespace);
        _namespace.Dispose();
    }

    private static async Task Must(string file, params string[] arguments)
    {
        CommandResult r = await HostCommand.RunAsync(TimeSpan.FromSeconds(10), file, arguments);
        Assert.True(r.ExitCode == 0, $"{file} {string.Join(' ', arguments)}: {r}");
    }
}
