using System.CommandLine;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Hosting;
using Beemesh.Identity.Join;
using Beemesh.Agent.Client;
using Beemesh.Agent.Tests;
using Beemesh.Agent.Tests.Policies;
using Beemesh.Cli.Commands;

namespace Beemesh.Cli.Tests;

public sealed class CliCommandTests
{
    [Fact]
    public async Task PolicyApplyListDeleteAgainstARunningAgent()
    {
        await using var agent = await AgentFixture.StartAsync();
        string dir = agent.Host.Options.StateDirectory;
        string file = Path.Combine(agent.Root, "policies.yaml");
        await File.WriteAllTextAsync(file, PolicyTexts.TwoPolicies);

        var apply = await RunAsync("policy", "apply", "-f", file, "--agent", dir);
        Assert.Equal(0, apply.Exit);
        Assert.Contains("authorizationpolicy shop/allow-web applied", apply.Out, StringComparison.Ordinal);
        Assert.Contains("policy version 1", apply.Out, StringComparison.Ordinal);

        var list = await RunAsync("policy", "list", "--agent", dir);
        Assert.Equal(0, list.Exit);
        Assert.Contains("no-admin", list.Out, StringComparison.Ordinal);
        Assert.Contains("DENY", list.Out, StringComparison.Ordinal);

        var delete = await RunAsync("policy", "delete", "no-admin", "-n", "shop", "--agent", dir);
        Assert.Equal(0, delete.Exit);
        Assert.Single((await agent.Client.ListPoliciesAsync()).Policies);

        var again = await RunAsync("policy", "delete", "no-admin", "--namespace", "shop", "--agent", dir);
        Assert.Equal(1, again.Exit);
        Assert.Equal("beemesh policy delete: no policy shop/no-admin\n", again.Err);
    }

    [Fact]
    public async Task BadPolicyFilePrintsTheAgentsLineNumberedErrors()
    {
        await using var agent = await AgentFixture.StartAsync();
        string file = Path.Combine(agent.Root, "bad.yaml");
        await File.WriteAllTextAsync(file, PolicyTexts.BadSecondDocument);
        var result = await RunAsync("policy", "apply", "-f", file, "--agent", agent.Host.Options.StateDirectory);
        Assert.Equal(1, result.Exit);
        Assert.Contains($"{file}: line 11, column", result.Err, StringComparison.Ordinal);
        Assert.Empty(result.Out);
        Assert.Empty((await agent.Client.ListPoliciesAsync()).Policies);

        var missing = await RunAsync("policy", "apply", "-f", Path.Combine(agent.Root, "nope.yaml"), "--agent", agent.Host.Options.StateDirectory);
        Assert.Equal(1, missing.Exit);
        Assert.StartsWith("beemesh policy apply: cannot read ", missing.Err, StringComparison.Ordinal);
        Assert.Single(missing.Err.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public async Task StatusShowsWorkloadsAndIdentities()
    {
        await using var agent = await AgentFixture.StartAsync();
        WorkloadRecord web = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("web", "shop"));
        await agent.Client.ReportConnectionsAsync(new ConnectionReport
        {
            WorkloadId = web.Id,
            Connections = [new LiveConnection { Peer = "spiffe://example.org/ns/shop/sa/api", Port = 8080, Direction = "outbound", Policy = "shop/allow-web", Rule = 0 }],
            SvidSerial = "0A1B2C",
            SvidNotAfter = new DateTimeOffset(2099, 1, 2, 3, 4, 5, TimeSpan.Zero),
            PolicyVersion = 0,
        });
        WorkloadRecord api = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("api", "shop"));
        var status = await RunAsync("status", "--agent", agent.Host.Options.StateDirectory);
        Assert.Contains("svid serial 0A1B2C, expires 2099-01-02T03:04:05Z (in ", status.Out, StringComparison.Ordinal);
        Assert.Contains("    policies not reported yet", status.Out, StringComparison.Ordinal);
        await agent.Client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies);
        await agent.Client.ReportConnectionsAsync(new ConnectionReport { WorkloadId = api.Id, Connections = [], PolicyVersion = 0 });
        string behind = (await RunAsync("status", "--agent", agent.Host.Options.StateDirectory)).Out;
        Assert.Contains("    policies version 0 (behind)", behind, StringComparison.Ordinal);
        long version = (await agent.Client.GetStatusAsync()).PolicyVersion;
        Assert.True(version > 0);
        await agent.Client.ReportConnectionsAsync(new ConnectionReport { WorkloadId = api.Id, Connections = [], PolicyVersion = version });
        string current = (await RunAsync("status", "--agent", agent.Host.Options.StateDirectory)).Out;
        Assert.Contains($"    policies version {version} (current)", current, StringComparison.Ordinal);
        Assert.Equal(0, status.Exit);
        Assert.Contains("trust domain  example.org", status.Out, StringComparison.Ordinal);
        Assert.Contains("web.shop", status.Out, StringComparison.Ordinal);
        Assert.Contains("spiffe://example.org/ns/shop/sa/web", status.Out, StringComparison.Ordinal);
        Assert.Contains("mesh 10.200.0.1", status.Out, StringComparison.Ordinal);
        Assert.Contains("(alive)", status.Out, StringComparison.Ordinal);
        Assert.Contains("outbound spiffe://example.org/ns/shop/sa/api port 8080: shop/allow-web rule 0", status.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StatusShowsWhichWorkloadListEachSidecarRoutesBy()
    {
        await using var agent = await AgentFixture.StartAsync();
        string dir = agent.Host.Options.StateDirectory;
        WorkloadRecord web = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("web", "shop"));
        Assert.Contains("    workload list not reported yet", (await RunAsync("status", "--agent", dir)).Out, StringComparison.Ordinal);

        WorkloadSet list = await agent.Client.WatchWorkloadsAsync(null, 0, TimeSpan.Zero);
        await agent.Client.ReportConnectionsAsync(new ConnectionReport { WorkloadId = web.Id, Connections = [], WorkloadListEpoch = list.Epoch, WorkloadListVersion = list.Version });
        Assert.Contains($"    workload list version {list.Version} (current)", (await RunAsync("status", "--agent", dir)).Out, StringComparison.Ordinal);

        // Another registration moves the list on: web's sidecar is behind until it reports the new list.
        await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("api", "shop"));
        AgentStatus status = await agent.Client.GetStatusAsync();
        Assert.True(status.WorkloadListVersion > list.Version, $"{status.WorkloadListVersion} after {list.Version}");
        Assert.Contains($"    workload list version {list.Version} (behind)", (await RunAsync("status", "--agent", dir)).Out, StringComparison.Ordinal);
        await agent.Client.ReportConnectionsAsync(new ConnectionReport { WorkloadId = web.Id, Connections = [], WorkloadListEpoch = list.Epoch, WorkloadListVersion = status.WorkloadListVersion });
        Assert.Equal(status.WorkloadListVersion, (await agent.Client.GetStatusAsync()).Workloads.Single(w => w.Workload.Id == web.Id).WorkloadListVersion);

        // A list from an earlier start of the agent is not this agent's list, whatever its version.
        await agent.Client.ReportConnectionsAsync(new ConnectionReport { WorkloadId = web.Id, Connections = [], WorkloadListEpoch = "an-earlier-start", WorkloadListVersion = status.WorkloadListVersion });
        Assert.Null((await agent.Client.GetStatusAsync()).Workloads.Single(w => w.Workload.Id == web.Id).WorkloadListVersion);
    }

    [Fact]
    public async Task StatusNamesTheNamesWithSeveralReplicas()
    {
        await using var agent = await AgentFixture.StartAsync();
        WorkloadRecord first = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("api", "shop"));
        string alone = (await RunAsync("status", "--agent", agent.Host.Options.StateDirectory)).Out;
        Assert.DoesNotContain("replicated", alone, StringComparison.Ordinal);

        WorkloadRecord second = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("api", "shop"));
        await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("web", "shop"));
        var status = await RunAsync("status", "--agent", agent.Host.Options.StateDirectory);
        Assert.Equal(0, status.Exit);
        Assert.Equal(first.MeshAddress, second.MeshAddress);
        Assert.Contains($"  api.shop [{first.Id}]  spiffe://example.org/ns/shop/sa/api  mesh {first.MeshAddress}", status.Out, StringComparison.Ordinal);
        Assert.Contains($"  api.shop [{second.Id}]  spiffe://example.org/ns/shop/sa/api  mesh {first.MeshAddress}", status.Out, StringComparison.Ordinal);
        Assert.Contains("replicated    1\n  api.shop  2 replicas (2 here), new connections round robin over all\n", status.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoAgentIsOneLineAndExitOne()
    {
        string dir = Directory.CreateTempSubdirectory("bm-ag-").FullName;
        var result = await RunAsync("status", "--agent", dir);
        Directory.Delete(dir);
        Assert.Equal(1, result.Exit);
        Assert.StartsWith("beemesh status: cannot reach the agent at ", result.Err, StringComparison.Ordinal);
        Assert.Single(result.Err.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public async Task AgentCommandServesUntilCancelled()
    {
        string root = Directory.CreateTempSubdirectory("bm-ag-").FullName;
        string dir = Path.Combine(root, "state");
        using var stop = new CancellationTokenSource();
        var output = new SignallingWriter();
        var error = new StringWriter();
        var config = new InvocationConfiguration { Output = output, Error = error };
        Task<int> run = Root().Parse(["agent", "--state-dir", dir, "--trust-domain", "mesh.test"]).InvokeAsync(config, stop.Token);
        string admin = Path.Combine(dir, "admin.sock");
        // The agent prints its sockets once it serves: wait for that line (or the command's end), never on a timer.
        using (var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            while (true)
            {
                Task written = output.Written; // taken before the check, so nothing written in between is missed
                if (run.IsCompleted || output.ToString().Contains("admin API", StringComparison.Ordinal))
                {
                    break;
                }

                await Task.WhenAny(written, run).WaitAsync(patience.Token);
            }
        }

        Assert.True(File.Exists(admin), $"the agent printed its sockets without serving: {output}\n{error}");

        using (var client = new AgentClient(dir))
        {
            Assert.Equal("mesh.test", (await client.GetStatusAsync()).TrustDomain);
        }

        Assert.Contains($"workload API: unix://{dir}/agent.sock", output.ToString(), StringComparison.Ordinal);
        await stop.CancelAsync();
        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.False(File.Exists(admin));
        Directory.Delete(root, recursive: true);
    }

    [Fact]
    public async Task AgentCommandRefusesABadTrustDomainInOneLine()
    {
        string root = Directory.CreateTempSubdirectory("bm-ag-").FullName;
        var result = await RunAsync("agent", "--state-dir", Path.Combine(root, "s"), "--trust-domain", "Not A Domain");
        Directory.Delete(root, recursive: true);
        Assert.Equal(1, result.Exit);
        Assert.StartsWith("beemesh agent: ", result.Err, StringComparison.Ordinal);
        Assert.Single(result.Err.TrimEnd('\n').Split('\n'));
    }

    [Theory]
    [InlineData("8", "mesh block prefix /8 must be between the mesh CIDR's /16 and /30")]
    [InlineData("31", "mesh block prefix /31 must be between the mesh CIDR's /16 and /30")]
    public async Task AgentCommandRefusesABadMeshBlockPrefixInOneLine(string prefix, string message)
    {
        string root = Directory.CreateTempSubdirectory("bm-ag-").FullName;
        var result = await RunAsync("agent", "--state-dir", Path.Combine(root, "s"), "--node-name", "n1", "--listen", "127.0.0.1:0", "--mesh-block-prefix", prefix);
        bool touched = Directory.Exists(Path.Combine(root, "s"));
        Directory.Delete(root, recursive: true);
        Assert.Equal(1, result.Exit);
        Assert.Equal($"beemesh agent: {message}\n", result.Err);
        Assert.False(touched);
    }

    [Theory]
    [InlineData("30s", 30)]
    [InlineData("10m", 600)]
    [InlineData("1h", 3600)]
    [InlineData("1h30m", 5400)]
    public void SvidTtl_ParsesDurations(string text, int seconds)
    {
        Assert.True(AgentCommand.TryParseDuration(text, out TimeSpan ttl));
        Assert.Equal(TimeSpan.FromSeconds(seconds), ttl);
    }

    [Theory]
    [InlineData("", "expected a number with a unit")]
    [InlineData("30", "expected a number with a unit")]
    [InlineData("5x", "expected a number with a unit")]
    [InlineData("10s1h", "expected a number with a unit")]
    [InlineData("-5s", "expected a number with a unit")]
    [InlineData("5s", "at least 10 s")]
    [InlineData("999h", "at most 30 days")]
    public async Task AgentCommandRefusesABadSvidTtlInOneLine(string ttl, string message)
    {
        string root = Directory.CreateTempSubdirectory("bm-ag-").FullName;
        var result = await RunAsync("agent", "--state-dir", Path.Combine(root, "s"), "--svid-ttl", ttl);
        Directory.Delete(root, recursive: true);
        Assert.Equal(2, result.Exit);
        Assert.StartsWith("beemesh agent: invalid --svid-ttl", result.Err, StringComparison.Ordinal);
        Assert.Contains(message, result.Err, StringComparison.Ordinal);
        Assert.Single(result.Err.TrimEnd('\n').Split('\n'));
    }

    [Theory]
    [InlineData("--node-cert-renew-after", "0")]
    [InlineData("--node-cert-renew-after", "1")]
    [InlineData("--node-cert-renew-after", "1.5")]
    [InlineData("--node-cert-renew-after", "-0.5")]
    [InlineData("--node-cert-renew-after", "2/3")]
    [InlineData("--node-cert-renew-after", "NaN")]
    [InlineData("--node-cert-retry", "5")]
    [InlineData("--node-cert-retry", "0s")]
    [InlineData("--node-cert-retry", "-5m")]
    public async Task AgentCommandRefusesBadRenewalSettingsInOneLine(string flag, string value)
    {
        string root = Directory.CreateTempSubdirectory("bm-ag-").FullName;
        var result = await RunAsync("agent", "--state-dir", Path.Combine(root, "s"), flag, value);
        bool touched = Directory.Exists(Path.Combine(root, "s"));
        Directory.Delete(root, recursive: true);
        Assert.Equal(2, result.Exit);
        Assert.StartsWith($"beemesh agent: invalid {flag} '{value}'", result.Err, StringComparison.Ordinal);
        Assert.Single(result.Err.TrimEnd('\n').Split('\n'));
        Assert.False(touched);
    }

    [Fact]
    public async Task AgentCommandTakesGoodRenewalSettings()
    {
        // Good values pass; the refusal that stops the start comes from the next flag checked.
        string root = Directory.CreateTempSubdirectory("bm-ag-").FullName;
        var result = await RunAsync("agent", "--state-dir", Path.Combine(root, "s"), "--node-cert-renew-after", "0.5", "--node-cert-retry", "1m30s", "--listen", "no-address");
        Directory.Delete(root, recursive: true);
        Assert.Equal(2, result.Exit);
        Assert.StartsWith("beemesh agent: invalid --listen 'no-address'", result.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a/b", "shop")]
    [InlineData("Deny-All", "shop")]
    [InlineData("deny", "Shop")]
    [InlineData("deny", "sh.op")]
    public async Task OddPolicyNamesInAFileAreRefusedBeforeAnyCall(string name, string ns)
    {
        string root = Directory.CreateTempSubdirectory("bm-cli-").FullName;
        string file = Path.Combine(root, "odd.yaml");
        await File.WriteAllTextAsync(file, $$"""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: "{{name}}", namespace: "{{ns}}"}
            spec: {action: DENY, rules: [{}]}
            """);
        // No agent runs in this directory: exit 2 shows the file was refused before any call.
        var result = await RunAsync("policy", "apply", "-f", file, "--agent", Path.Combine(root, "no-agent"));
        Directory.Delete(root, recursive: true);
        Assert.Equal(2, result.Exit);
        Assert.Contains($"{file}: line 3, column", result.Err, StringComparison.Ordinal);
        Assert.Contains("DNS-1123", result.Err, StringComparison.Ordinal);
        Assert.Empty(result.Out);
    }

    [Theory]
    [InlineData("a/b", "default", "policy name")]
    [InlineData("ok", "Bad_NS", "--namespace")]
    public async Task PolicyDeleteRefusesOddNamesBeforeAnyCall(string name, string ns, string field)
    {
        var result = await RunAsync("policy", "delete", name, "-n", ns, "--agent", "/nonexistent/agent");
        Assert.Equal(2, result.Exit);
        Assert.StartsWith($"beemesh policy delete: {field} ", result.Err, StringComparison.Ordinal);
        Assert.Contains("[a-z0-9]([-a-z0-9]*[a-z0-9])?", result.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("web/x", "default")]
    [InlineData("web", "UPPER")]
    [InlineData("-web", "default")]
    public async Task SidecarRefusesOddWorkloadNamesBeforeAnyCall(string name, string ns)
    {
        var result = await RunAsync("sidecar", "--name", name, "--namespace", ns, "--inbound", "15008", "--agent", "/nonexistent/agent");
        Assert.Equal(2, result.Exit);
    }

    [Theory]
    [InlineData("web", "default", true)]
    [InlineData("a-b-1", "x9", true)]
    [InlineData("web.x", "default", false)]
    [InlineData("web", "a.b", false)]
    [InlineData("", "default", false)]
    public void WorkloadNameRules(string name, string ns, bool valid) =>
        Assert.Equal(valid, CliSupport.CheckWorkloadNames(name, ns) is null);

    [Fact]
    public async Task NodeRemoveRunsOnTheFirstNodeAndStatusListsRemoteWorkloads()
    {
        string root = Directory.CreateTempSubdirectory("bm-cli-rm-").FullName;
        try
        {
            await using AgentHost first = await StartNode(root, "a", null);
            using X509Certificate2 ca = X509CertificateLoader.LoadCertificate(first.Authority.Root.RawData);
            string token = new JoinTokenStore(first.Options.StateDirectory, JoinToken.FingerprintOf(ca)).Create(TimeSpan.FromMinutes(5)).ToString();
            await using AgentHost second = await StartNode(root, "b", (first.NodeEndPoint!, token));
            using var onB = new AgentClient(second.Options.StateDirectory);
            await onB.RegisterWorkloadAsync(AgentFixture.Workload("web", "shop"));
            await ChangeWait.UntilAsync(first.Workloads, () => first.Workloads.Resolve("web.shop") is not null);

            var status = await RunAsync("status", "--agent", first.Options.StateDirectory);
            Assert.Equal(0, status.Exit);
            Assert.Contains("remote        1\n  web.shop  node b  spiffe://mesh.test/ns/shop/sa/web  mesh ", status.Out, StringComparison.Ordinal);

            var elsewhere = await RunAsync("node", "remove", "b", "--agent", second.Options.StateDirectory);
            Assert.Equal(1, elsewhere.Exit);
            Assert.Equal("beemesh node remove: node remove: this node does not hold the trust domain's root key; run it on the first node of the mesh\n", elsewhere.Err);

            var self = await RunAsync("node", "remove", "a", "--agent", first.Options.StateDirectory);
            Assert.Equal(1, self.Exit);
            Assert.Contains("cannot revoke itself", self.Err, StringComparison.Ordinal);

            var removed = await RunAsync("node", "remove", "b", "--agent", first.Options.StateDirectory);
            Assert.Equal(0, removed.Exit);
            Assert.Equal("node b revoked; every node refuses its links, records and routes\n", removed.Out);
            await ChangeWait.UntilAsync(first.Workloads, () => first.Workloads.Resolve("web.shop") is null);

            var after = await RunAsync("status", "--agent", first.Options.StateDirectory);
            Assert.DoesNotContain("node b", after.Out, StringComparison.Ordinal);
            var members = await RunAsync("members", "--agent", first.Options.StateDirectory);
            Assert.Contains("revoked  b\n", members.Out, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task NodeRemoveWithoutOverlaySaysWhy()
    {
        await using var agent = await AgentFixture.StartAsync();
        var result = await RunAsync("node", "remove", "b", "--agent", agent.Host.Options.StateDirectory);
        Assert.Equal(1, result.Exit);
        Assert.Equal("beemesh node remove: this agent runs without the overlay (start it with --node-name and --listen)\n", result.Err);
    }

    private static Task<AgentHost> StartNode(string root, string name, (EndPoint Contact, string Token)? join) => AgentHost.StartAsync(new AgentOptions
    {
        StateDirectory = Path.Combine(root, name),
        TrustDomain = "mesh.test",
        NodeName = name,
        Listen = new IPEndPoint(IPAddress.Loopback, 0),
        TunnelPort = 0, // several agents share 127.0.0.1: an ephemeral tunnel port each
        Join = join is { } j ? [j.Contact] : [],
        JoinToken = join?.Token,
    });

    private static RootCommand Root() => new("test") { AgentCommand.Create(), PolicyCommand.Create(), StatusCommand.Create(), SidecarCommand.Create(), NodeCommand.Create(), MembersCommand.Create() };

    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };
        int exit = await Root().Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    /// <summary>A <see cref="StringWriter"/> whose <see cref="Written"/> completes at the next write.</summary>
    private sealed class SignallingWriter : StringWriter
    {
        private TaskCompletionSource _written = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Completes once something more was written.</summary>
        public Task Written => Volatile.Read(ref _written).Task;

        public override void Write(char value)
        {
            base.Write(value);
            Pulse();
        }

        public override void Write(string? value)
        {
            base.Write(value);
            Pulse();
        }

        public override void Write(char[] buffer, int index, int count)
        {
            base.Write(buffer, index, count);
            Pulse();
        }

        public override void Write(ReadOnlySpan<char> buffer)
        {
            base.Write(buffer);
            Pulse();
        }

        public override void WriteLine(ReadOnlySpan<char> buffer)
        {
            base.WriteLine(buffer);
            Pulse();
        }

        public override async Task WriteAsync(string? value)
        {
            await base.WriteAsync(value);
            Pulse();
        }

        public override async Task WriteLineAsync(string? value)
        {
            await base.WriteLineAsync(value);
            Pulse();
        }

        private void Pulse() => Interlocked.Exchange(ref _written, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }
}
