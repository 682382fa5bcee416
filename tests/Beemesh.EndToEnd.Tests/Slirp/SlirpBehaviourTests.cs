using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Slirp;

/// <summary>
/// One behaviour suite run against both the reference slirp4netns 1.2 and beemesh-slirp, started
/// the way podman starts them. Each test makes its own namespace; the assertions are the same for
/// both except where Beemesh documents an improvement (the port-forward source address).
/// </summary>
[Collection("namespaces")]
public sealed class SlirpBehaviourTests(ITestOutputHelper output)
{
    private const string Gateway = "10.0.2.2";

    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Guest_reaches_host_loopback_tcp_through_the_gateway(string implementation)
    {
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(implementation, output);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Task server = EchoLineOnceAsync(listener);

        CommandResult r = await sandbox.GuestAsync(
            $"exec 3<>/dev/tcp/{Gateway}/{Port(listener)}; echo hello-from-guest >&3; cat <&3");

        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("echo:hello-from-guest\n", r.Stdout);
        await server.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Disable_host_loopback_makes_the_gateway_unreachable_for_tcp(string implementation)
    {
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(
            implementation, output, new SlirpSandboxOptions { ExtraArguments = ["--disable-host-loopback"] });
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();

        CommandResult r = await sandbox.GuestAsync(
            $"timeout 5 bash -c 'exec 3<>/dev/tcp/{Gateway}/{Port(listener)}; echo x >&3; cat <&3'");

        Assert.True(r.ExitCode != 0, $"connection to the host loopback succeeded: {r}");
        Assert.False(listener.Pending(), "the host listener was reached");
        // slirp4netns answers with ICMP network unreachable: the guest's connect fails at once with
        // ENETUNREACH, not "Connection refused" (a RST) and not a time-out.
        Assert.Contains("Network is unreachable", r.Stderr, StringComparison.Ordinal);
    }

    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Guest_udp_round_trips_to_host_loopback_through_the_gateway(string implementation)
    {
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(implementation, output);
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        using var stop = new CancellationTokenSource();
        Task server = UdpEchoAsync(udp, stop.Token);
        int port = ((IPEndPoint)udp.Client.LocalEndPoint!).Port;

        CommandResult r = await sandbox.GuestAsync(
            $"exec 3<>/dev/udp/{Gateway}/{port}; for i in 1 2 3; do printf hello-udp >&3; " +
            "if timeout 2 dd bs=100 count=1 <&3 2>/dev/null; then exit 0; fi; done; exit 1");

        await stop.CancelAsync();
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.StartsWith("udp:hello-udp", r.Stdout, StringComparison.Ordinal);
        await server;
    }

    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Gateway_answers_ping(string implementation)
    {
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(implementation, output);

        CommandResult r = await sandbox.GuestAsync($"busybox ping -c 1 -W 3 {Gateway} || busybox ping -c 1 -W 3 {Gateway}");

        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("1 packets received", r.Stdout, StringComparison.Ordinal);
    }

    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Dns_forwarder_asks_the_resolv_conf_name_server(string implementation)
    {
        using var dns = new SlirpDnsResponder("web.beemesh.test", IPAddress.Parse("192.0.2.77"));
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(
            implementation, output, new SlirpSandboxOptions { ResolvConf = $"nameserver {dns.ListenAddress}\n" });

        CommandResult found = await sandbox.GuestAsync("busybox nslookup web.beemesh.test 10.0.2.3");
        CommandResult missing = await sandbox.GuestAsync("busybox nslookup nope.beemesh.test 10.0.2.3");

        Assert.True(found.ExitCode == 0, found.ToString());
        Assert.Contains("192.0.2.77", found.Stdout, StringComparison.Ordinal);
        Assert.Contains("NXDOMAIN", missing.Stdout + missing.Stderr, StringComparison.Ordinal);
        Assert.Contains("web.beemesh.test", dns.QueriedNames);
        Assert.Contains("nope.beemesh.test", dns.QueriedNames);
    }

    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Api_socket_adds_lists_and_removes_a_tcp_forward(string implementation)
    {
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(implementation, output);
        const int guestPort = 8080;
        sandbox.StartInGuest("ncat", "-l", "-k", guestPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--sh-exec", "echo peer=$NCAT_REMOTE_ADDR");
        await sandbox.WaitForGuestListenerAsync(guestPort);
        int hostPort = FreeTcpPort();

        JsonNode added = Json(await sandbox.ApiAsync(
            $"{{\"execute\":\"add_hostfwd\",\"arguments\":{{\"proto\":\"tcp\",\"host_addr\":\"127.0.0.1\",\"host_port\":{hostPort},\"guest_addr\":\"10.0.2.100\",\"guest_port\":{guestPort}}}}}"));
        int id = added["return"]!["id"]!.GetValue<int>();
        string answer = await ReadAllFromAsync(IPAddress.Loopback, hostPort);
        JsonNode listed = Json(await sandbox.ApiAsync("{\"execute\":\"list_hostfwd\"}"));
        JsonNode removed = Json(await sandbox.ApiAsync($"{{\"execute\":\"remove_hostfwd\",\"arguments\":{{\"id\":{id}}}}}"));
        JsonNode listedAfter = Json(await sandbox.ApiAsync("{\"execute\":\"list_hostfwd\"}"));

        Assert.True(id > 0, added.ToJsonString());
        Assert.StartsWith("peer=", answer, StringComparison.Ordinal);
        AssertJson(
            $"{{\"entries\":[{{\"id\":{id},\"proto\":\"tcp\",\"host_addr\":\"127.0.0.1\",\"host_port\":{hostPort},\"guest_addr\":\"10.0.2.100\",\"guest_port\":{guestPort}}}]}}",
            listed);
        AssertJson("{\"return\":{}}", removed);
        AssertJson("{\"entries\":[]}", listedAfter);
        await Assert.ThrowsAnyAsync<SocketException>(() => ReadAllFromAsync(IPAddress.Loopback, hostPort));
    }

    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Api_socket_refuses_bad_requests_with_the_reference_texts(string implementation)
    {
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(implementation, output);
        int taken = FreeTcpPort();
        await AddForwardAsync(sandbox, "127.0.0.1", taken, 80);
        string Add(string arguments) => $"{{\"execute\":\"add_hostfwd\",\"arguments\":{{{arguments}}}}}";

        // The texts are slirp4netns 1.2.0's. Left out on purpose: add_hostfwd without "arguments"
        // or without "proto" crashes the reference (SIGSEGV); a guest_addr outside the network
        // and a host_port above 65535 are accepted by the reference but refused by Beemesh.
        (string Request, string Desc)[] cases =
        [
            ("garbage", "bad request: cannot parse JSON"),
            ("", "bad request: cannot parse JSON"),
            ("[]", "bad request: json_object() failed"),
            ("{}", "bad request: no execute found"),
            ("{\"execute\":5}", "bad request: no execute found"),
            ("{\"execute\":\"nope\"}", "bad request: unknown execute"),
            (Add($"\"proto\":\"tcp\",\"host_addr\":\"127.0.0.1\",\"host_port\":{taken},\"guest_port\":81"),
                "bad request: add_hostfwd: slirp_add_hostfwd failed"),
            (Add("\"proto\":\"tcp\",\"host_addr\":\"bogus\",\"host_port\":45681,\"guest_port\":80"),
                "bad request: add_hostfwd: bad arguments.host_addr"),
            (Add("\"proto\":\"tcp\",\"host_addr\":\"::1\",\"host_port\":45681,\"guest_port\":80"),
                "bad request: add_hostfwd: bad arguments.host_addr"),
            (Add("\"proto\":\"tcp\",\"guest_port\":80"), "bad request: add_hostfwd: bad arguments.host_port"),
            (Add("\"proto\":\"tcp\",\"host_port\":\"45685\",\"guest_port\":80"), "bad request: add_hostfwd: bad arguments.host_port"),
            (Add("\"proto\":\"tcp\",\"host_port\":45683"), "bad request: add_hostfwd: bad arguments.guest_port"),
            ("{\"execute\":\"add_hostfwd\",\"arguments\":{\"proto\":\"sctp\",\"host_port\":34568,\"guest_port\":8080}}",
                "bad request: add_hostfwd: bad arguments.proto"),
            ("{\"execute\":\"remove_hostfwd\",\"arguments\":{}}", "bad request: remove_hostfwd: bad arguments.id"),
            ("{\"execute\":\"remove_hostfwd\",\"arguments\":{\"id\":4242}}", "bad request: remove_hostfwd: bad arguments.id"),
        ];
        var mismatches = new List<string>();
        foreach ((string request, string desc) in cases)
        {
            string reply = await sandbox.ApiAsync(request);
            var expected = new JsonObject { ["error"] = new JsonObject { ["desc"] = desc } };
            if (!JsonNode.DeepEquals(expected, Json(reply)))
            {
                mismatches.Add($"{request} -> {reply} (expected {expected.ToJsonString()})");
            }
        }

        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
        Assert.False(sandbox.ImplementationExited, "the implementation died on a bad request");
    }

    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Api_socket_udp_forward_reaches_a_guest_socket(string implementation)
    {
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(implementation, output);
        const int guestPort = 5353;
        sandbox.StartInGuest("ncat", "-u", "-l", "-k", guestPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--sh-exec", "echo peer=$NCAT_REMOTE_ADDR");
        await sandbox.WaitForGuestListenerAsync(guestPort, udp: true);
        using var client = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        int hostPort = ((IPEndPoint)client.Client.LocalEndPoint!).Port;
        client.Dispose();

        string reply = await sandbox.ApiAsync(
            $"{{\"execute\":\"add_hostfwd\",\"arguments\":{{\"proto\":\"udp\",\"host_addr\":\"127.0.0.1\",\"host_port\":{hostPort},\"guest_port\":{guestPort}}}}}");
        Assert.True(Json(reply)["return"]?["id"] is not null, reply);
        using var sender = new UdpClient(AddressFamily.InterNetwork);
        string? answer = null;
        for (int attempt = 0; attempt < 3 && answer is null; attempt++)
        {
            await sender.SendAsync("hello"u8.ToArray(), new IPEndPoint(IPAddress.Loopback, hostPort));
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                answer = Encoding.ASCII.GetString((await sender.ReceiveAsync(wait.Token)).Buffer);
            }
            catch (OperationCanceledException)
            {
                // Lost or not yet served: send again.
            }
        }

        Assert.Equal("peer=10.0.2.2\n", answer);
    }

    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Port_forward_source_address_seen_by_the_guest(string implementation)
    {
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(implementation, output);
        await using VethClientNamespace client = await VethClientNamespace.CreateAsync();
        const int guestPort = 8081;
        sandbox.StartInGuest("ncat", "-l", "-k", guestPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--sh-exec", "echo peer=$NCAT_REMOTE_ADDR");
        await sandbox.WaitForGuestListenerAsync(guestPort);
        int loopbackPort = FreeTcpPort();
        int vethPort = FreeTcpPort();
        await AddForwardAsync(sandbox, "127.0.0.1", loopbackPort, guestPort);
        await AddForwardAsync(sandbox, client.HostAddress.ToString(), vethPort, guestPort);

        string fromLoopback = (await ReadAllFromAsync(IPAddress.Loopback, loopbackPort)).Trim();
        CommandResult fromVeth = await client.RunAsync($"exec 3<>/dev/tcp/{client.HostAddress}/{vethPort}; cat <&3");

        Assert.Equal("peer=10.0.2.2", fromLoopback);
        Assert.True(fromVeth.ExitCode == 0, fromVeth.ToString());
        // Both keep a non-loopback client's address: libslirp rewrites only loopback (and
        // unspecified) sources to the gateway, so slirp4netns's own port forwarder is no worse
        // than Beemesh here (podman's default rootlessport forwarder is what loses the address).
        Assert.Equal($"peer={client.ClientAddress}", fromVeth.Stdout.Trim());
    }

    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Ipv6_slaac_ping_and_tcp_to_host_loopback(string implementation)
    {
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(
            implementation, output, new SlirpSandboxOptions { ExtraArguments = ["-6"] });
        using var listener = new TcpListener(IPAddress.IPv6Loopback, 0);
        listener.Start();
        Task server = EchoLineOnceAsync(listener);

        CommandResult slaac = await sandbox.GuestAsync(
            "for i in $(seq 150); do a=$(ip -6 -o addr show dev tap0 scope global); " +
            "case \"$a\" in *fd00::*) case \"$a\" in *tentative*) ;; *) echo \"$a\"; exit 0;; esac;; esac; sleep 0.1; done; " +
            "ip -6 addr show dev tap0; exit 1",
            timeoutSeconds: 25);
        CommandResult ping = await sandbox.GuestAsync("busybox ping6 -c 1 -W 3 fd00::2 || busybox ping6 -c 1 -W 3 fd00::2");
        CommandResult tcp = await sandbox.GuestAsync(
            $"exec 3<>/dev/tcp/fd00::2/{Port(listener)}; echo hello-v6 >&3; cat <&3");

        Assert.True(slaac.ExitCode == 0, $"no usable fd00::/64 address: {slaac}");
        Assert.Contains("fd00::", slaac.Stdout, StringComparison.Ordinal);
        Assert.True(ping.ExitCode == 0, ping.ToString());
        Assert.True(tcp.ExitCode == 0, tcp.ToString());
        Assert.Equal("echo:hello-v6\n", tcp.Stdout);
        await server.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Mtu_65520_is_configured_and_carries_a_megabyte_each_way_intact(string implementation)
    {
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(
            implementation, output, new SlirpSandboxOptions { ExtraArguments = ["-m", "65520"] });
        var toHost = new byte[1 << 20];
        var toGuest = new byte[1 << 20];
        new Random(1).NextBytes(toHost);
        new Random(2).NextBytes(toGuest);
        string toHostFile = Path.Combine(sandbox.Directory, "to-host.bin");
        string receivedFile = Path.Combine(sandbox.Directory, "received.bin");
        await File.WriteAllBytesAsync(toHostFile, toHost);

        CommandResult link = await sandbox.GuestAsync("ip link show tap0");

        using var upload = new TcpListener(IPAddress.Loopback, 0);
        upload.Start();
        Task<byte[]> uploaded = ReceiveAllOnceAsync(upload);
        CommandResult send = await sandbox.GuestAsync(
            $"exec 3<>/dev/tcp/{Gateway}/{Port(upload)}; cat '{toHostFile}' >&3; exec 3>&-", timeoutSeconds: 30);
        byte[] got = await uploaded.WaitAsync(TimeSpan.FromSeconds(30));

        using var download = new TcpListener(IPAddress.Loopback, 0);
        download.Start();
        Task served = SendOnceAsync(download, toGuest);
        CommandResult receive = await sandbox.GuestAsync(
            $"exec 3<>/dev/tcp/{Gateway}/{Port(download)}; cat <&3 > '{receivedFile}'", timeoutSeconds: 30);
        await served.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Contains("mtu 65520", link.Stdout, StringComparison.Ordinal);
        Assert.True(send.ExitCode == 0, send.ToString());
        Assert.True(got.AsSpan().SequenceEqual(toHost), $"guest→host: got {got.Length} bytes, not the 1 MiB sent");
        Assert.True(receive.ExitCode == 0, receive.ToString());
        byte[] received = await File.ReadAllBytesAsync(receivedFile);
        Assert.True(received.AsSpan().SequenceEqual(toGuest), $"host→guest: got {received.Length} bytes, not the 1 MiB sent");
    }

    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Closing_the_exit_fd_stops_the_implementation(string implementation)
    {
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(
            implementation, output, new SlirpSandboxOptions { WithExitFd = true });
        Assert.False(sandbox.ImplementationExited, "exited before the exit fd was closed");

        sandbox.CloseExitFd();

        Assert.True(
            await sandbox.WaitForImplementationExitAsync(TimeSpan.FromSeconds(2)),
            $"{implementation} still running 2 s after its exit fd closed");
    }

    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Startup_time_and_resident_memory_are_reported(string implementation)
    {
        var lines = new List<string>();
        for (int run = 0; run < 3; run++)
        {
            await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(implementation, output);
            long rss = sandbox.ResidentKilobytes();
            Assert.True(rss > 0, "VmRSS must be positive");
            lines.Add($"{implementation} run {run + 1}: ready after {sandbox.StartupTime.TotalMilliseconds:F1} ms, VmRSS {rss} KiB");
        }

        foreach (string line in lines)
        {
            output.WriteLine(line);
        }
    }

    private static int Port(TcpListener listener) => ((IPEndPoint)listener.LocalEndpoint).Port;

    private static int FreeTcpPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return Port(probe);
    }

    private static JsonNode Json(string text)
    {
        try
        {
            return JsonNode.Parse(text) ?? throw new Xunit.Sdk.XunitException($"JSON null: {text}");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new Xunit.Sdk.XunitException($"not JSON: \"{text}\" ({e.Message})");
        }
    }

    private static void AssertJson(string expected, JsonNode actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), actual), $"expected {expected}, got {actual.ToJsonString()}");

    private static async Task AddForwardAsync(SlirpSandbox sandbox, string hostAddress, int hostPort, int guestPort)
    {
        string reply = await sandbox.ApiAsync(
            $"{{\"execute\":\"add_hostfwd\",\"arguments\":{{\"proto\":\"tcp\",\"host_addr\":\"{hostAddress}\",\"host_port\":{hostPort},\"guest_port\":{guestPort}}}}}");
        Assert.True(Json(reply)["return"]?["id"] is not null, $"add_hostfwd {hostAddress}:{hostPort}: {reply}");
    }

    private static async Task<string> ReadAllFromAsync(IPAddress address, int port)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var client = new TcpClient(address.AddressFamily);
        await client.ConnectAsync(address, port, limit.Token);
        using var reader = new StreamReader(client.GetStream(), Encoding.ASCII);
        return await reader.ReadToEndAsync(limit.Token);
    }

    private static async Task EchoLineOnceAsync(TcpListener listener)
    {
        using TcpClient c = await listener.AcceptTcpClientAsync();
        NetworkStream s = c.GetStream();
        using var reader = new StreamReader(s, Encoding.ASCII, false, 256, leaveOpen: true);
        string? line = await reader.ReadLineAsync();
        await s.WriteAsync(Encoding.ASCII.GetBytes($"echo:{line}\n"));
    }

    private static async Task<byte[]> ReceiveAllOnceAsync(TcpListener listener)
    {
        using TcpClient c = await listener.AcceptTcpClientAsync();
        var all = new MemoryStream();
        await c.GetStream().CopyToAsync(all);
        return all.ToArray();
    }

    private static async Task SendOnceAsync(TcpListener listener, byte[] data)
    {
        using TcpClient c = await listener.AcceptTcpClientAsync();
        NetworkStream s = c.GetStream();
        await s.WriteAsync(data);
        c.Client.Shutdown(SocketShutdown.Send);
        // Wait for the guest to close so no unread data turns our close into a reset.
        await s.CopyToAsync(Stream.Null);
    }

    private static async Task UdpEchoAsync(UdpClient udp, CancellationToken stop)
    {
        try
        {
            while (true)
            {
                UdpReceiveResult r = await udp.ReceiveAsync(stop);
                byte[] reply = [.. "udp:"u8, .. r.Buffer];
                await udp.SendAsync(reply, r.RemoteEndPoint, stop);
            }
        }
        catch (OperationCanceledException)
        {
            // Test finished.
        }
    }
}
