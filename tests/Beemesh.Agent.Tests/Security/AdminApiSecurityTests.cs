using System.Net;
using System.Net.Sockets;
using System.Text;
using Beemesh.Agent.Client;
using Beemesh.Agent.Tests.Policies;
using Beemesh.Spiffe.Processes;

namespace Beemesh.Agent.Tests.Security;

/// <summary>Who may call the admin API and what it accepts.</summary>
public sealed class AdminApiSecurityTests
{
    private static string Registration(string name, int pid) =>
        $$"""{"name":"{{name}}","namespace":"prod","pid":{{pid}},"tunnelEndpoint":"127.0.0.1:15008"}""";

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task RegisteredWorkloadAndItsDescendantsAreRefused(bool fromChild)
    {
        Skip.IfNot(File.Exists("/usr/bin/python3"), "python3 is not installed (/usr/bin/python3)");
        await using var agent = await AgentFixture.StartAsync();
        // The workload tries to give itself another identity and to read the policies.
        using var register = AdminCaller.Start(agent.Host.AdminSocketPath, "POST", "/v1/workloads", Registration("api", 0), fromChild);
        using var list = AdminCaller.Start(agent.Host.AdminSocketPath, "GET", "/v1/policies", "", fromChild);
        await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("web", "shop", register.ProcessId));
        await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("web2", "shop", list.ProcessId));

        string registered = await register.SendAsync();
        Assert.StartsWith("403 ", registered, StringComparison.Ordinal);
        Assert.Contains("refuses workloads", registered, StringComparison.Ordinal);
        Assert.Contains("spiffe://example.org/ns/shop/sa/web", registered, StringComparison.Ordinal);
        string listed = await list.SendAsync();
        Assert.StartsWith("403 ", listed, StringComparison.Ordinal);

        // The callers may have exited (and been reaped) by now: what matters is that no "api" exists.
        Assert.DoesNotContain(await agent.Client.ListWorkloadsAsync(), w => w.Name == "api");
        Assert.Contains("beemesh_agent_admin_forbidden_total 2", await agent.Client.GetMetricsAsync(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task UnregisteredOwnerProcessStillMayCall()
    {
        Skip.IfNot(File.Exists("/usr/bin/python3"), "python3 is not installed (/usr/bin/python3)");
        await using var agent = await AgentFixture.StartAsync();
        using var caller = AdminCaller.Start(agent.Host.AdminSocketPath, "GET", "/v1/policies");
        Assert.StartsWith("200 ", await caller.SendAsync(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task SelfRegisteredSidecarKeepsTheAdminApiButItsChildDoesNot()
    {
        Skip.IfNot(File.Exists("/usr/bin/python3"), "python3 is not installed (/usr/bin/python3)");
        await using var agent = await AgentFixture.StartAsync();
        // Like `beemesh sidecar`: a process registers itself, keeps using the admin API, and its
        // child (the workload it runs) is refused.
        {
            // A python process registering its own pid.
            var info = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3") { UseShellExecute = false, RedirectStandardOutput = true };
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add("""
                import os, socket, sys
                def req(method, url, body):
                    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
                    b = body.encode()
                    s.sendall(("%s %s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (method, url, len(b))).encode() + b)
                    data = b""
                    while True:
                        d = s.recv(65536)
                        if not d: break
                        data += d
                    return data.decode().split("\r\n")[0].split(" ")[1]
                me = os.getpid()
                own = req("POST", "/v1/workloads", '{"name":"%s","namespace":"prod","pid":%d,"tunnelEndpoint":"127.0.0.1:1"}' % (sys.argv[2], me))
                again = req("GET", "/v1/policies", "")
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.write(w, req("GET", "/v1/policies", "").encode()); os._exit(0)
                os.close(w); child = os.read(r, 100).decode(); os.waitpid(pid, 0)
                print(own, again, child, flush=True)
                """);
            info.ArgumentList.Add(agent.Host.AdminSocketPath);
            info.ArgumentList.Add("side");
            using var process = System.Diagnostics.Process.Start(info)!;
            string line = await process.StandardOutput.ReadLineAsync() ?? "";
            await process.WaitForExitAsync();
            // Its own registration, then the sidecar itself, then its child.
            Assert.Equal("201 200 403", line);
        }
    }

    [SkippableFact]
    public async Task PidZeroRegistersTheCallerAsTheAgentSeesIt()
    {
        Skip.IfNot(File.Exists("/usr/bin/python3"), "python3 is not installed (/usr/bin/python3)");
        await using var agent = await AgentFixture.StartAsync();
        // A sidecar container knows only its own PID namespace's numbers: it asks for pid 0, "me".
        var info = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3") { UseShellExecute = false, RedirectStandardOutput = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("""
            import os, socket, sys
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
            b = b'{"name":"boxed","namespace":"prod","pid":0,"tunnelEndpoint":"127.0.0.1:1"}'
            s.sendall(b"POST /v1/workloads HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(b) + b)
            data = b""
            while True:
                d = s.recv(65536)
                if not d: break
                data += d
            print(data.decode().split("\r\n")[0].split(" ")[1], os.getpid(), flush=True)
            sys.stdin.readline()
            """);
        info.ArgumentList.Add(agent.Host.AdminSocketPath);
        info.RedirectStandardInput = true;
        using var process = System.Diagnostics.Process.Start(info)!;
        try
        {
            string[] line = (await process.StandardOutput.ReadLineAsync() ?? "").Split(' ');
            Assert.Equal("201", line[0]);
            WorkloadRecord record = Assert.Single(await agent.Client.ListWorkloadsAsync());
            Assert.Equal(int.Parse(line[1], System.Globalization.CultureInfo.InvariantCulture), record.Pid);
            Assert.Equal("spiffe://example.org/ns/prod/sa/boxed", record.SpiffeId);
        }
        finally
        {
            process.StandardInput.Close(); // it exits
            await process.WaitForExitAsync();
        }

        // From the agent's own process, pid 0 is the agent itself: refused as such.
        var self = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("a", pid: 0)));
        Assert.Equal(HttpStatusCode.Forbidden, self.StatusCode);
        Assert.Contains("the agent itself", self.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RegistrationIsOnlyForTheCallerOrItsDescendants()
    {
        await using var agent = await AgentFixture.StartAsync();
        int parent = ProcessStat.Read(Environment.ProcessId)!.Value.ParentProcessId;
        var notMine = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("a", pid: parent)));
        Assert.Equal(HttpStatusCode.Forbidden, notMine.StatusCode);
        Assert.Contains("neither the caller", notMine.Message, StringComparison.Ordinal);

        var init = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("a", pid: 1)));
        Assert.Equal(HttpStatusCode.Forbidden, init.StatusCode);
        Assert.Contains("pid 1", init.Message, StringComparison.Ordinal);

        var self = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("a", pid: Environment.ProcessId)));
        Assert.Equal(HttpStatusCode.Forbidden, self.StatusCode);
        Assert.Contains("the agent itself", self.Message, StringComparison.Ordinal);
        Assert.Empty(await agent.Client.ListWorkloadsAsync());
    }

    [Fact]
    public async Task ReRegisteringIsIdempotentAndAnotherNameIsAConflict()
    {
        await using var agent = await AgentFixture.StartAsync();
        int pid = AgentFixture.StartChild().Id;
        WorkloadRecord first = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("api", "prod", pid));
        WorkloadRecord again = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("api", "prod", pid));
        Assert.Equal(first.Id, again.Id);
        Assert.Single(await agent.Client.ListWorkloadsAsync());

        var other = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("admin", "prod", pid)));
        Assert.Equal(HttpStatusCode.Conflict, other.StatusCode);
        Assert.Contains("already registered as spiffe://example.org/ns/prod/sa/api", other.Message, StringComparison.Ordinal);
        Assert.Single(await agent.Client.ListWorkloadsAsync());
    }

    [Theory]
    [InlineData("a/b", "default", "name")]
    [InlineData("-api", "default", "name")]
    [InlineData("api-", "default", "name")]
    [InlineData("Api", "default", "name")]
    [InlineData("api", "pr.od", "namespace")]
    [InlineData("api", "pr\nod", "namespace")]
    public async Task OddWorkloadNamesAreRefusedWithTheRule(string name, string ns, string field)
    {
        await using var agent = await AgentFixture.StartAsync();
        var refused = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.RegisterWorkloadAsync(AgentFixture.Workload(name, ns)));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.StartsWith(field + " ", refused.Message, StringComparison.Ordinal);
        Assert.Contains("DNS-1123 label", refused.Message, StringComparison.Ordinal);
        Assert.Contains("[a-z0-9]([-a-z0-9]*[a-z0-9])?", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a/b")]
    [InlineData("Deny-All")]
    [InlineData("deny\\nall")]
    [InlineData("deny..all")]
    public async Task OddPolicyNamesAreRefusedWithTheRule(string name)
    {
        await using var agent = await AgentFixture.StartAsync();
        string yaml = $$"""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: "{{name}}", namespace: shop}
            spec: {action: DENY, rules: [{}]}
            """;
        var refused = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.ApplyPoliciesAsync(yaml));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains(refused.Details, d => d.Contains("DNS-1123 subdomain", StringComparison.Ordinal));
        Assert.Empty((await agent.Client.ListPoliciesAsync()).Policies);
    }

    [Fact]
    public async Task OversizedBodyIs413AndTheAgentKeepsServing()
    {
        await using var agent = await AgentFixture.StartAsync(configure: o => o.AdminMaxBodyBytes = 4096);
        var refused = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.ApplyPoliciesAsync(new string('#', 5000)));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.StatusCode);
        Assert.Contains("exceeds the limit of 4096 bytes", refused.Message, StringComparison.Ordinal);
        await agent.Client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies);
        Assert.Contains("beemesh_agent_admin_too_large_total 1", await agent.Client.GetMetricsAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task PolicyCountAndSizeLimitsRefuseTheWholeFile()
    {
        await using var agent = await AgentFixture.StartAsync(configure: o => o.MaxPolicies = 3);
        await agent.Client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies);
        string two = PolicyTexts.TwoPolicies.Replace("allow-web", "p3", StringComparison.Ordinal).Replace("no-admin", "p4", StringComparison.Ordinal);
        var refused = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.ApplyPoliciesAsync(two));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.StatusCode);
        Assert.Contains("4 policies (at most 3)", refused.Message, StringComparison.Ordinal);
        Assert.Equal(2, (await agent.Client.ListPoliciesAsync()).Policies.Count);
        // Replacing existing policies does not count twice.
        await agent.Client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies);

        await using var small = await AgentFixture.StartAsync(configure: o => o.MaxPolicyBytes = 300);
        var big = await Assert.ThrowsAsync<AgentApiException>(() => small.Client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, big.StatusCode);
        Assert.Contains("bytes of policy text (at most 300)", big.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectionsPastThePerProcessLimitGet429AndOthersAreServed()
    {
        await using var agent = await AgentFixture.StartAsync(configure: o => o.AdminMaxConnectionsPerProcess = 4);
        var held = new List<Socket>();
        try
        {
            for (int i = 0; i < 4; i++)
            {
                Socket socket = await ConnectAsync(agent.Host.AdminSocketPath);
                held.Add(socket);
                // One answered request each: the agent has accepted and counted this connection
                // before the next one arrives (accepts are handled on the thread pool, in any order).
                await socket.SendAsync("GET /v1/policies HTTP/1.1\r\nHost: agent\r\n\r\n"u8.ToArray(), SocketFlags.None);
                byte[] first = new byte[64];
                int read = await socket.ReceiveAsync(first, SocketFlags.None);
                Assert.StartsWith("HTTP/1.1 200 ", Encoding.ASCII.GetString(first, 0, read), StringComparison.Ordinal);
            }

            using Socket extra = await ConnectAsync(agent.Host.AdminSocketPath);
            string answer = await ReadAllAsync(extra);
            Assert.StartsWith("HTTP/1.1 429 ", answer, StringComparison.Ordinal);
            Assert.Contains("already has 4 connections open", answer, StringComparison.Ordinal);
        }
        finally
        {
            foreach (Socket socket in held)
            {
                socket.Dispose();
            }
        }

        // Once the agent has seen the held connections close (its limiter's change signal), this process is served again.
        using (var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30))) // keeps a broken build from hanging; measures nothing
        {
            await agent.Host.AdminConnections.WaitUntilAsync(l => l.Open == 0, patience.Token);
        }

        await agent.Client.ListPoliciesAsync();

        Assert.Contains("beemesh_agent_admin_connections_refused_total", await agent.Client.GetMetricsAsync(), StringComparison.Ordinal);
    }

    private static async Task<Socket> ConnectAsync(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
        return socket;
    }

    private static async Task<string> ReadAllAsync(Socket socket)
    {
        var text = new StringBuilder();
        byte[] buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        int read;
        while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
        {
            text.Append(Encoding.UTF8.GetString(buffer, 0, read));
        }

        return text.ToString();
    }
}
