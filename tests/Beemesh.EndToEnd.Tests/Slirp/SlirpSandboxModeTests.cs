using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Slirp;

/// <summary>
/// <c>--enable-sandbox</c> as podman passes it (with <c>--enable-seccomp</c>): the real slirp4netns and
/// beemesh-slirp run side by side, and from outside the process (/proc/PID) beemesh-slirp must have
/// slirp4netns's capability sets, a root that is an empty tmpfs holding only resolv.conf and the API
/// socket's directory, and still serve DNS, port forwarding and the API socket.
/// </summary>
[Collection("namespaces")]
public sealed class SlirpSandboxModeTests(ITestOutputHelper output)
{
    private static readonly string[] CapabilityFields = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"];

    [SkippableFact]
    public async Task Sandbox_has_slirp4netns_capabilities_an_empty_root_and_still_serves()
    {
        using var dns = new SlirpDnsResponder("web.beemesh.test", IPAddress.Parse("192.0.2.77"));
        var options = new SlirpSandboxOptions
        {
            ExtraArguments = ["--enable-sandbox", "--enable-seccomp"],
            ResolvConf = $"nameserver {dns.ListenAddress}\n",
        };
        Dictionary<string, string> reference;
        await using (SlirpSandbox real = await SlirpSandbox.StartAsync(SlirpImplementation.Reference, output, options))
        {
            reference = StatusFields(real.ImplementationPid);
        }

        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(SlirpImplementation.Beemesh, output, options);
        int pid = sandbox.ImplementationPid;
        Dictionary<string, string> ours = StatusFields(pid);

        // Capabilities, no_new_privs and seccomp exactly as slirp4netns has them.
        foreach (string field in CapabilityFields)
        {
            output.WriteLine($"{field}: slirp4netns {reference[field]}, beemesh-slirp {ours[field]}");
            Assert.Equal(reference[field], ours[field]);
        }

        Assert.Equal("0000000000000400", ours["CapEff"]); // CAP_NET_BIND_SERVICE alone

        // The root: a tmpfs with nothing but resolv.conf and the API socket's directory.
        string root = $"/proc/{pid}/root";
        string[] entries = [.. Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories)
            .Select(e => e[root.Length..]).Order(StringComparer.Ordinal)];
        output.WriteLine("root: " + string.Join(' ', entries));
        string apiDirectory = sandbox.Directory;
        string[] expected = [.. AncestorsAndSelf(apiDirectory), .. Directory.EnumerateFileSystemEntries(apiDirectory)
            .Where(e => File.Exists(e) || Directory.Exists(e)).Select(e => e), "/etc", "/etc/resolv.conf"];
        Assert.All(entries, e => Assert.Contains(e, expected));
        Assert.Contains("/etc/resolv.conf", entries);
        Assert.Contains(sandbox.ApiSocketPath, entries);
        Assert.DoesNotContain("/usr", entries);
        Assert.DoesNotContain("/proc", entries);
        string rootMount = File.ReadLines($"/proc/{pid}/mountinfo").First(l => l.Split(' ')[4] == "/");
        Assert.Contains(" - tmpfs ", rootMount, StringComparison.Ordinal);
        Assert.Contains(" ro,", rootMount, StringComparison.Ordinal);
        // The working directory is the new root too: nothing of the old tree is held.
        Assert.Equal(
            Directory.EnumerateFileSystemEntries(root).Select(Path.GetFileName).Order(StringComparer.Ordinal),
            Directory.EnumerateFileSystemEntries($"/proc/{pid}/cwd").Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // Still serves: DNS through resolv.conf's server, the API socket, and a port forward.
        CommandResult found = await sandbox.GuestAsync("busybox nslookup web.beemesh.test 10.0.2.3");
        Assert.True(found.ExitCode == 0, found.ToString());
        Assert.Contains("192.0.2.77", found.Stdout, StringComparison.Ordinal);

        const int guestPort = 8080;
        sandbox.StartInGuest("ncat", "-l", "-k", guestPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--sh-exec", "echo sandboxed-guest");
        await sandbox.WaitForGuestListenerAsync(guestPort);
        int hostPort = FreeTcpPort();
        string added = await sandbox.ApiAsync(
            $"{{\"execute\":\"add_hostfwd\",\"arguments\":{{\"proto\":\"tcp\",\"host_addr\":\"127.0.0.1\",\"host_port\":{hostPort},\"guest_port\":{guestPort}}}}}");
        Assert.NotNull(JsonNode.Parse(added)?["return"]?["id"]);
        Assert.Equal("sandboxed-guest\n", await ReadAllFromAsync(IPAddress.Loopback, hostPort));
        string listed = await sandbox.ApiAsync("{\"execute\":\"list_hostfwd\"}");
        Assert.Contains($"\"host_port\":{hostPort}", listed, StringComparison.Ordinal);
    }

    private static IEnumerable<string> AncestorsAndSelf(string directory)
    {
        for (string? d = directory; d is not null && d != "/"; d = Path.GetDirectoryName(d))
        {
            yield return d;
        }
    }

    private static Dictionary<string, string> StatusFields(int pid)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
            {
                fields[line[..colon]] = line[(colon + 1)..].Trim();
            }
        }

        return fields;
    }

    private static int FreeTcpPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private static async Task<string> ReadAllFromAsync(IPAddress address, int port)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var client = new TcpClient(address.AddressFamily);
        await client.ConnectAsync(address, port, limit.Token);
        using var reader = new StreamReader(client.GetStream(), Encoding.ASCII);
        return await reader.ReadToEndAsync(limit.Token);
    }
}
