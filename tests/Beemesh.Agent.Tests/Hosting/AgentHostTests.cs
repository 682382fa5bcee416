using System.Net;
using System.Net.Sockets;
using System.Text;
using Beemesh.Agent.Client;
using Beemesh.Agent.Tests.Policies;

namespace Beemesh.Agent.Tests.Hosting;

public sealed class AgentHostTests
{
    [Fact]
    public async Task StateDirectoryAndAdminSocketAreOwnerOnly()
    {
        await using var agent = await AgentFixture.StartAsync();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(agent.Host.Options.StateDirectory));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(agent.Host.AdminSocketPath));
        Assert.EndsWith("/admin.sock", agent.Host.AdminSocketPath, StringComparison.Ordinal);
        Assert.EndsWith("/agent.sock", agent.Host.WorkloadApiSocketPath, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(agent.Host.Options.StateDirectory, "ca.key")));
    }

    [Fact]
    public async Task MalformedJsonIsRefusedWithOneLineAndTheAgentKeepsServing()
    {
        await using var agent = await AgentFixture.StartAsync();
        foreach (string body in new[] { "{\"name\": ", "[1,2]", "null", "{\"pid\": \"x\"}" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/workloads") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            using HttpResponseMessage response = await agent.Client.SendRawAsync(request);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            string text = await response.Content.ReadAsStringAsync();
            Assert.StartsWith("{\"error\":", text, StringComparison.Ordinal);
            Assert.Equal(text.Length - 1, text.IndexOf('\n', StringComparison.Ordinal));
        }

        Assert.Equal("web", (await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("web"))).Name);
        Assert.Contains("beemesh_agent_admin_bad_requests_total 4\n", await agent.Client.GetMetricsAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownEndpointAndBadQueryAreRefused()
    {
        await using var agent = await AgentFixture.StartAsync();
        using (HttpResponseMessage response = await agent.Client.SendRawAsync(new HttpRequestMessage(HttpMethod.Get, "v1/nothing")))
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        using (HttpResponseMessage response = await agent.Client.SendRawAsync(new HttpRequestMessage(HttpMethod.Get, "v1/resolve-address?address=zzz")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        using (HttpResponseMessage response = await agent.Client.SendRawAsync(new HttpRequestMessage(HttpMethod.Get, "v1/policies/watch?since=abc")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
    }

    [Fact]
    public async Task StatusShowsWorkloadsConnectionsAndPolicies()
    {
        await using var agent = await AgentFixture.StartAsync();
        WorkloadRecord web = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("web"));
        await agent.Client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies);
        await agent.Client.ReportConnectionsAsync(new ConnectionReport
        {
            WorkloadId = web.Id,
            Connections = [new LiveConnection { Peer = "spiffe://example.org/ns/shop/sa/api", Port = 8080, Direction = "outbound", Policy = "shop/allow-web", Rule = 0 }],
            SvidSerial = "0A1B2C",
            SvidNotAfter = DateTimeOffset.UtcNow.AddMinutes(30),
        });
        var unknown = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.ReportConnectionsAsync(new ConnectionReport { WorkloadId = "w999", Connections = [] }));
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);

        AgentStatus status = await agent.Client.GetStatusAsync();
        Assert.Equal("example.org", status.TrustDomain);
        Assert.Equal(agent.Host.WorkloadApiSocketPath, status.WorkloadApiSocket);
        Assert.Equal(3600, status.SvidTtlSeconds);
        Assert.True(status.RootExpires > DateTimeOffset.UtcNow.AddYears(5));
        Assert.Equal(2, status.PolicyCount);
        Assert.Equal(1, status.PolicyVersion);
        WorkloadStatus only = Assert.Single(status.Workloads);
        Assert.Equal("spiffe://example.org/ns/default/sa/web", only.Workload.SpiffeId);
        Assert.True(only.PidAlive);
        Assert.Equal("shop/allow-web", Assert.Single(only.Connections).Policy);
        Assert.NotNull(only.ConnectionsReportedAt);
        Assert.Equal("0A1B2C", only.SvidSerial);
        Assert.True(only.SvidNotAfter > DateTimeOffset.UtcNow);
    }

    [Fact]
    public async Task StatusSaysWhenNoSvidWasReported()
    {
        await using var agent = await AgentFixture.StartAsync();
        WorkloadRecord web = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("web"));
        await agent.Client.ReportConnectionsAsync(new ConnectionReport { WorkloadId = web.Id, Connections = [], SvidSerial = new string('F', 65), SvidNotAfter = DateTimeOffset.UtcNow });
        WorkloadStatus only = Assert.Single((await agent.Client.GetStatusAsync()).Workloads);
        Assert.Null(only.SvidSerial); // an absurd serial is not recorded
        Assert.Null(only.SvidNotAfter);
    }

    [Fact]
    public async Task MetricsAreInPrometheusText()
    {
        await using var agent = await AgentFixture.StartAsync();
        await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("web"));
        await agent.Client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies);
        string metrics = await agent.Client.GetMetricsAsync();
        Assert.Contains("# TYPE beemesh_agent_workloads gauge\nbeemesh_agent_workloads 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("beemesh_agent_policies 2\n", metrics, StringComparison.Ordinal);
        Assert.Contains("beemesh_agent_policy_version 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("# TYPE beemesh_agent_admin_requests_total counter\nbeemesh_agent_admin_requests_total 3\n", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RestartKeepsTheCaAndStopRemovesSockets()
    {
        await using var first = await AgentFixture.StartAsync();
        string state = first.Host.Options.StateDirectory;
        byte[] root = first.Host.Authority.Root.RawData;
        string admin = first.Host.AdminSocketPath;
        await first.Host.DisposeAsync();
        Assert.False(File.Exists(admin));
        await using var second = await Beemesh.Agent.Hosting.AgentHost.StartAsync(new Beemesh.Agent.Hosting.AgentOptions { StateDirectory = state });
        Assert.Equal(root, second.Authority.Root.RawData);
    }

    [Fact]
    public async Task SecondAgentOnTheSameDirectoryIsRefused()
    {
        await using var agent = await AgentFixture.StartAsync();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            Beemesh.Agent.Hosting.AgentHost.StartAsync(new Beemesh.Agent.Hosting.AgentOptions { StateDirectory = agent.Host.Options.StateDirectory }));
        Assert.Contains("already running", e.Message, StringComparison.Ordinal);
        Assert.NotNull(await agent.Client.GetStatusAsync());
    }

    [Fact]
    public async Task ClientReportsAMissingAgentAsASocketError()
    {
        string dir = Directory.CreateTempSubdirectory("bm-ag-").FullName;
        using var client = new AgentClient(dir);
        var e = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetStatusAsync());
        Assert.IsType<SocketException>(e.InnerException);
        Directory.Delete(dir);
    }
}
