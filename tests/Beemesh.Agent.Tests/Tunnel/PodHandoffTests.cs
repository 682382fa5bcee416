using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Beemesh.Agent.Client;
using Beemesh.Agent.Tunnel;
using Beemesh.Agent.Workloads;

namespace Beemesh.Agent.Tests.Tunnel;

/// <summary>
/// A sidecar in another network namespace (a pod's): the agent tells it from the namespace of the
/// registering process, points its record at the tunnel port with its server name, and the tunnel
/// port hands it its connections as descriptors, which it uses from inside its namespace.
/// </summary>
public sealed partial class PodHandoffTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("bm-podhand-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void NetworkNamespacesDifferOnlyWhenBothAreKnownAndNotTheSame()
    {
        string proc = Path.Combine(_root, "proc");
        Link(proc, 10, "net:[4026531840]");
        Link(proc, 11, "net:[4026531840]");
        Link(proc, 12, "net:[4026532999]");
        Link(proc, 13, "mnt:[4026531841]");

        Assert.False(NetworkNamespaces.Differ(proc, 10, 11));
        Assert.True(NetworkNamespaces.Differ(proc, 10, 12));
        // Unknown (no such process, or not a network namespace link): not different.
        Assert.False(NetworkNamespaces.Differ(proc, 10, 99));
        Assert.False(NetworkNamespaces.Differ(proc, 13, 12));
        Assert.False(NetworkNamespaces.Differ(proc, 0, 12));
        // The real one: this process shares its own namespace.
        Assert.False(NetworkNamespaces.Differ("/proc", Environment.ProcessId, Environment.ProcessId));
        Assert.StartsWith("net:[", NetworkNamespaces.Of("/proc", Environment.ProcessId), StringComparison.Ordinal);
    }

    [Fact]
    public void AHandoffOnlyWorkloadNamesTheTunnelPortAndItsServerNameAndFollowsThePort()
    {
        var registry = new WorkloadRegistry("example.org", "10.200.0.0/16");
        var registration = new WorkloadRegistration { Name = "web", Namespace = "shop", Pid = Environment.ProcessId, TunnelEndpoint = "127.0.0.1:15006" };
        Assert.Throws<InvalidOperationException>(() => registry.Add(registration, Environment.ProcessId, 0, handoffOnly: true));

        registry.SetHandoffEndpoint(new IPEndPoint(IPAddress.Loopback, 40001));
        WorkloadRecord pod = registry.Add(registration, Environment.ProcessId, 0, handoffOnly: true)!;
        WorkloadRecord plain = registry.Add(new WorkloadRegistration { Name = "api", Namespace = "shop", Pid = Environment.ProcessId, TunnelEndpoint = "127.0.0.1:15007" })!;
        Assert.Equal("127.0.0.1:40001", pod.TunnelEndpoint);
        Assert.Equal(TunnelServerName.For("web", "shop", "example.org", pod.Id), pod.ServerName);
        Assert.Equal("127.0.0.1:15007", plain.TunnelEndpoint);
        Assert.Null(plain.ServerName);

        long version = registry.Version;
        registry.SetHandoffEndpoint(new IPEndPoint(IPAddress.Loopback, 40002));
        Assert.True(registry.Version > version);
        Assert.Equal("127.0.0.1:40002", registry.List().Single(r => r.Id == pod.Id).TunnelEndpoint);
        Assert.Equal("127.0.0.1:15007", registry.List().Single(r => r.Id == plain.Id).TunnelEndpoint);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 40002), registry.LocalTunnelEndpoint("web", "shop"));
    }

    [Fact]
    public void A_replica_server_name_leads_to_that_replica_and_a_departed_or_foreign_one_to_the_newest_of_the_name()
    {
        var registry = new WorkloadRegistry("example.org", "10.200.0.0/16");
        registry.SetHandoffEndpoint(new IPEndPoint(IPAddress.Loopback, 40001));
        WorkloadRecord first = registry.Add(new WorkloadRegistration { Name = "web", Namespace = "shop", Pid = Environment.ProcessId, TunnelEndpoint = "127.0.0.1:15006" }, Environment.ProcessId, 0, handoffOnly: true)!;
        WorkloadRecord second = registry.Add(new WorkloadRegistration { Name = "web", Namespace = "shop", Pid = Environment.ProcessId, TunnelEndpoint = "127.0.0.1:15007" })!;
        WorkloadRecord other = registry.Add(new WorkloadRegistration { Name = "api", Namespace = "shop", Pid = Environment.ProcessId, TunnelEndpoint = "127.0.0.1:15008" })!;
        Assert.Equal(first.MeshAddress, second.MeshAddress);
        Assert.NotEqual(first.ServerName, TunnelServerName.For("web", "shop", "example.org", second.Id));

        Assert.Equal(first.Id, registry.LocalWorkloadId("web", "shop", first.Id));
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 40001), registry.LocalTunnelEndpoint("web", "shop", first.Id));
        Assert.Equal(second.Id, registry.LocalWorkloadId("web", "shop", second.Id));
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 15007), registry.LocalTunnelEndpoint("web", "shop", second.Id));
        // Another name's replica or an unknown one: the newest of the name asked for.
        Assert.Equal(second.Id, registry.LocalWorkloadId("web", "shop", other.Id));
        Assert.Equal(second.Id, registry.LocalWorkloadId("web", "shop", "w999"));
        Assert.Equal(second.Id, registry.LocalWorkloadId("web", "shop", null));
        Assert.NotNull(registry.Remove(second.Id));
        Assert.Equal(first.Id, registry.LocalWorkloadId("web", "shop", second.Id));
        Assert.Null(registry.LocalWorkloadId("none", "shop", first.Id));
    }

    [Fact]
    public async Task AConnectionForASidecarWithoutItsChannelIsRefusedNotRelayedToTheTunnelPortItself()
    {
        SniTunnelRouter? router = null;
        const string name = "web.default.example.org";
        router = new SniTunnelRouter(new IPEndPoint(IPAddress.Loopback, 0), n => n == name ? router!.Endpoint : null)
        {
            HandOff = (_, _) => false,
        };
        await using (router)
        {
            router.Start();
            byte[] hello = await ClientHelloSniTests.CaptureHelloAsync(name);
            using var client = new TcpClient();
            await client.ConnectAsync(router.Endpoint);
            await client.GetStream().WriteAsync(hello);
            int read;
            try
            {
                read = await client.GetStream().ReadAsync(new byte[16]);
            }
            catch (IOException)
            {
                read = 0;
            }

            Assert.Equal(0, read);
            Assert.Equal(1, router.Counters.GetValueOrDefault("refused_unreachable"));
            Assert.Equal(0, router.Counters.GetValueOrDefault("relayed"));
            Assert.Equal(0, router.Counters.GetValueOrDefault("routed"));
        }
    }

    // A process that moves itself into a new network namespace, registers itself (pid 0) with the
    // agent, opens the handoff channel for the id it was given, and answers on each descriptor it
    // receives with what it read.
    private const string PodScript = AdminRequestScript.Function + """
        import ctypes, os, re, sys
        admin, handoff = sys.argv[1:3]
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x40000000) != 0:
            print("unshare failed %d" % ctypes.get_errno(), flush=True)
            sys.exit(1)
        body = '{"name":"web","namespace":"default","pid":0,"tunnelEndpoint":"127.0.0.1:15006","ports":[{"port":80,"protocol":"tcp"}]}'
        status, rest = admin_request(admin, "POST", "/v1/workloads", body, "Content-Type: application/json\r\n")
        wid = re.search(r'"id":"(w[0-9]+)"', rest)
        print("registered %s %s" % (status, wid.group(1) if wid else rest.replace("\n", " ")), flush=True)
        sys.stdin.readline()
        ch = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ch.connect(handoff)
        ch.send(wid.group(1).encode())
        print("channel %s" % ch.recv(512).decode(), flush=True)
        while True:
            msg, fds, flags, addr = socket.recv_fds(ch, 16, 1)
            if not fds:
                break
            conn = socket.socket(fileno=fds[0])
            data = conn.recv(4096)
            conn.sendall(b"pod read %d" % len(data))
            conn.close()
            print("served", flush=True)
        """;

    [SkippableFact]
    public async Task ASidecarInAnotherNetworkNamespaceGetsItsConnectionsThroughTheTunnelPortOnly()
    {
        Skip.IfNot(File.Exists("/usr/bin/python3"), "python3 is not installed (/usr/bin/python3)");
        Skip.IfNot(Environment.UserName == "root", "making a network namespace needs root");
        await using var agent = await AgentFixture.StartAsync();
        Assert.NotNull(agent.Host.TunnelEndPoint);
        Assert.True(IPAddress.IsLoopback(agent.Host.TunnelEndPoint!.Address));
        var info = new ProcessStartInfo("/usr/bin/python3") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardInput = true };
        foreach (string argument in new[] { "-c", PodScript, agent.Host.AdminSocketPath, agent.Host.TunnelHandoff!.Path })
        {
            info.ArgumentList.Add(argument);
        }

        using Process pod = Process.Start(info)!;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            string registered = await pod.StandardOutput.ReadLineAsync(timeout.Token) ?? "";
            Skip.If(registered.StartsWith("unshare failed", StringComparison.Ordinal), registered);
            Match match = RegisteredLine().Match(registered);
            Assert.True(match.Success, registered);
            string id = match.Groups[1].Value;

            // Its record names the agent's tunnel port and its server name, not its own loopback.
            WorkloadRecord record = (await agent.Client.ListWorkloadsAsync()).Single(w => w.Id == id);
            Assert.Equal(agent.Host.TunnelEndPoint.ToString(), record.TunnelEndpoint);
            Assert.Equal($"{id}.web.default.example.org", record.ServerName);
            Assert.Equal(pod.Id, record.Pid);

            // No other process may take its connections.
            Assert.Equal($"refused: process {Environment.ProcessId} did not register it", await AnswerAsync(agent.Host.TunnelHandoff.Path, id));

            // Without its channel a caller is refused, never relayed to the tunnel port itself.
            byte[] hello = await ClientHelloSniTests.CaptureHelloAsync("web.default.example.org");
            Assert.Equal("", await CallAsync(agent.Host.TunnelEndPoint, hello));
            Assert.Equal(1, agent.Host.TunnelRouter!.Counters.GetValueOrDefault("refused_unreachable"));

            await pod.StandardInput.WriteLineAsync("open");
            await pod.StandardInput.FlushAsync();
            Assert.Equal("channel ok", await pod.StandardOutput.ReadLineAsync(timeout.Token));
            Assert.Equal($"pod read {hello.Length}", await CallAsync(agent.Host.TunnelEndPoint, hello));
            Assert.Equal("served", await pod.StandardOutput.ReadLineAsync(timeout.Token));
            Assert.Equal(1, agent.Host.TunnelRouter.Counters.GetValueOrDefault("handed_off"));
            Assert.Equal(0, agent.Host.TunnelRouter.Counters.GetValueOrDefault("relayed"));
        }
        finally
        {
            pod.Kill();
            await pod.WaitForExitAsync();
        }
    }

    [GeneratedRegex("^registered 201 (w[0-9]+)$")]
    private static partial Regex RegisteredLine();

    private static async Task<string> CallAsync(IPEndPoint endpoint, byte[] hello)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(endpoint);
        NetworkStream stream = client.GetStream();
        await stream.WriteAsync(hello);
        var answer = new MemoryStream();
        var buffer = new byte[256];
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer)) > 0)
            {
                answer.Write(buffer, 0, n);
            }
        }
        catch (IOException)
        {
        }

        return Encoding.UTF8.GetString(answer.ToArray());
    }

    private static async Task<string> AnswerAsync(string path, string id)
    {
        using var channel = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        await channel.ConnectAsync(new UnixDomainSocketEndPoint(path));
        await channel.SendAsync(Encoding.UTF8.GetBytes(id), SocketFlags.None);
        var answer = new byte[TunnelHandoff.MaxMessageBytes];
        int length = await channel.ReceiveAsync(answer, SocketFlags.None);
        return Encoding.UTF8.GetString(answer, 0, length);
    }

    private static void Link(string proc, int pid, string target)
    {
        string ns = Path.Combine(proc, pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "ns");
        Directory.CreateDirectory(ns);
        File.CreateSymbolicLink(Path.Combine(ns, "net"), target);
    }
}
