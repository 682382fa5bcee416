using System.Diagnostics;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Slirp;

/// <summary>
/// <c>--outbound-addr</c> and <c>--outbound-addr6</c>: guest connections leave the host from that
/// address. The implementation runs in a network namespace the test creates, whose dummy interface
/// (a veth end where the kernel has no dummy driver) holds two addresses of each family; a server on the first address reports the peer it saw, which
/// without the option would be the first address itself (the kernel's choice for a local destination).
/// </summary>
[Collection("namespaces")]
public sealed class SlirpOutboundAddressTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Guest_connections_leave_from_the_outbound_addresses(string implementation)
    {
        SlirpImplementation.Require(implementation);
        Skip.IfNot(File.Exists("/usr/sbin/ip") || File.Exists("/usr/bin/ip"), "needs iproute2");
        using Process host = HostCommand.Start("unshare", ["--net", "--fork", "sleep", "600"], out _, out _);
        var servers = new List<Process>();
        try
        {
            int hostPid = await WaitForChildAsync(host.Id);
            string pid = hostPid.ToString(System.Globalization.CultureInfo.InvariantCulture);
            CommandResult setup = await HostCommand.RunAsync(TimeSpan.FromSeconds(20), "nsenter", "-t", pid, "-n", "bash", "-c",
                "set -e; ip link set lo up; " +
                // A kernel built without CONFIG_DUMMY (this machine's) gets a veth pair instead: d0 is
                // then one end of it, which serves the same purpose, an interface holding local addresses.
                "ip link add d0 type dummy 2>/dev/null || { ip link add d0 type veth peer name d0peer; ip link set d0peer up; }; " +
                "ip addr add 192.0.2.10/24 dev d0; ip addr add 192.0.2.11/24 dev d0; " +
                "ip addr add 2001:db8::10/64 dev d0 nodad; ip addr add 2001:db8::11/64 dev d0 nodad; ip link set d0 up");
            Assert.True(setup.ExitCode == 0, setup.ToString());
            foreach (string listen in new[] { "192.0.2.10", "2001:db8::10" })
            {
                servers.Add(HostCommand.Start("nsenter", ["-t", pid, "-n", "ncat", "-l", "-k", listen, "7777", "--sh-exec", "echo peer=$NCAT_REMOTE_ADDR"], out _, out _));
            }

            CommandResult listening = await HostCommand.RunAsync(TimeSpan.FromSeconds(20), "nsenter", "-t", pid, "-n", "bash", "-c",
                "for i in $(seq 200); do [ $(ss -Hltn 'sport = :7777' | wc -l) = 2 ] && exit 0; sleep 0.05; done; exit 1");
            Assert.True(listening.ExitCode == 0, "the servers did not start: " + listening);

            await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(implementation, output, new SlirpSandboxOptions
            {
                ExtraArguments = ["-6", "--outbound-addr=192.0.2.11", "--outbound-addr6=2001:db8::11"],
                HostNetworkNamespace = $"/proc/{pid}/ns/net",
            });

            CommandResult v4 = await sandbox.GuestAsync("timeout 10 ncat --recv-only 192.0.2.10 7777 </dev/null");
            CommandResult v6 = await sandbox.GuestAsync(
                // A tentative address (duplicate detection still running) cannot be a source yet.
                "for i in $(seq 100); do ip -6 addr show dev tap0 scope global | grep inet6 | grep -qv tentative && break; sleep 0.1; done; " +
                "timeout 10 ncat --recv-only 2001:db8::10 7777 </dev/null", timeoutSeconds: 30);

            Assert.True(v4.ExitCode == 0, v4.ToString());
            Assert.Equal("peer=192.0.2.11", v4.Stdout.Trim());
            Assert.True(v6.ExitCode == 0, v6.ToString());
            Assert.Equal("peer=2001:db8::11", v6.Stdout.Trim());
        }
        finally
        {
            servers.ForEach(HostCommand.Kill);
            HostCommand.Kill(host);
        }
    }

    private static async Task<int> WaitForChildAsync(int pid)
    {
        string children = $"/proc/{pid}/task/{pid}/children";
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            string text = File.Exists(children) ? (await File.ReadAllTextAsync(children, limit.Token)).Trim() : "";
            if (text.Length > 0)
            {
                return int.Parse(text.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            }

            await Task.Delay(10, limit.Token);
        }
    }
}
