using System.Net;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;
using Beemesh.Identity.Join;

namespace Beemesh.Agent.Tests.Mesh;

public sealed class OverlayHostTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("bm-ov-").FullName;

    [Fact]
    public async Task ThreeJoinedAgentsLinkAndHoldEachOthersNodeRecords()
    {
        await using AgentHost first = await Start("a", join: null, token: null);
        await using AgentHost second = await Start("b", [first.NodeEndPoint!], CreateToken(first));
        await using AgentHost third = await Start("c", [first.NodeEndPoint!], CreateToken(first));

        foreach (AgentHost host in new[] { first, second, third })
        {
            using var client = new AgentClient(host.Options.StateDirectory);
            MembersReport report = await WaitForAsync(client, r => r.Nodes.Count == 3 && r.Active.Count == 2);
            Assert.Equal(["a", "b", "c"], report.Nodes.Select(n => n.Name));
            Assert.All(report.Nodes, n => Assert.Equal("alive", n.State));
            Assert.Equal(host.Node!.NodeName, report.Node);
            Assert.DoesNotContain(host.Node.NodeName, report.Active);
        }

        Assert.True(first.Overlay!.Counters.GetValueOrDefault("records_accepted") >= 3);

        // A workload registered on c resolves on a, marked remote with its node, and shows in a's watch.
        using var onC = new AgentClient(third.Options.StateDirectory);
        WorkloadRecord registered = await onC.RegisterWorkloadAsync(AgentFixture.Workload("web", "shop"));
        Assert.Null(registered.Node);
        using var onA = new AgentClient(first.Options.StateDirectory);
        WorkloadRecord? resolved = null;
        for (int i = 0; i < 300 && resolved is null; i++)
        {
            resolved = await onA.ResolveAsync("web.shop.svc.cluster.local");
            if (resolved is null)
            {
                await Task.Delay(100);
            }
        }

        Assert.NotNull(resolved);
        Assert.Equal("c", resolved.Node);
        Assert.Equal(registered.SpiffeId, resolved.SpiffeId);
        Assert.Equal(registered.MeshAddress, resolved.MeshAddress);
        Assert.Equal(0, resolved.Pid);
        Assert.Contains((await onA.WatchWorkloadsAsync(null, 0, TimeSpan.FromSeconds(1))).Workloads, w => w.Name == "web" && w.Node == "c");
        Assert.Empty(first.Workloads.List());

        // Unregistering withdraws the route everywhere (a signed tombstone).
        await onC.UnregisterWorkloadAsync(registered.Id);
        for (int i = 0; i < 300 && first.Workloads.Resolve("web.shop") is not null; i++)
        {
            await Task.Delay(100);
        }

        Assert.Null(first.Workloads.Resolve("web.shop"));

        // A policy applied on b reaches a and c, at the same mesh version.
        using var onB = new AgentClient(second.Options.StateDirectory);
        await onB.ApplyPoliciesAsync(DenyAll);
        using var onCAgain = new AgentClient(third.Options.StateDirectory);
        foreach (AgentClient client in new[] { onA, onCAgain })
        {
            PolicySet set = await client.ListPoliciesAsync();
            for (int i = 0; i < 300 && set.Policies.Count == 0; i++)
            {
                await Task.Delay(100);
                set = await client.ListPoliciesAsync();
            }

            Assert.Equal("deny-all", Assert.Single(set.Policies).Name);
        }

        string? version = (await onB.GetMembersAsync()).PolicyVersion;
        Assert.NotNull(version);
        Assert.Equal(version, (await WaitForAsync(onA, r => r.PolicyVersion == version)).PolicyVersion);
        Assert.Equal(version, (await WaitForAsync(onCAgain, r => r.PolicyVersion == version)).PolicyVersion);
        Assert.Contains("beemesh_overlay_policy_sets_applied_total 1\n", await onA.GetMetricsAsync(), StringComparison.Ordinal);
    }

    private const string DenyAll = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: deny-all, namespace: shop}
        spec: {action: DENY, rules: [{}]}
        """;

    [Fact]
    public async Task MembersWithoutOverlayAnswersWhy()
    {
        await using AgentHost alone = await AgentHost.StartAsync(new AgentOptions { StateDirectory = Path.Combine(_root, "x") });
        using var client = new AgentClient(alone.Options.StateDirectory);
        AgentApiException e = await Assert.ThrowsAsync<AgentApiException>(() => client.GetMembersAsync());
        Assert.Contains("--listen", e.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    // The overlay converges in well under a second on loopback; the bound only keeps a broken build from hanging.
    private static async Task<MembersReport> WaitForAsync(AgentClient client, Func<MembersReport, bool> done)
    {
        MembersReport report = await client.GetMembersAsync();
        for (int i = 0; i < 300 && !done(report); i++)
        {
            await Task.Delay(100);
            report = await client.GetMembersAsync();
        }

        return report;
    }

    private Task<AgentHost> Start(string name, EndPoint[]? join, string? token) => AgentHost.StartAsync(new AgentOptions
    {
        StateDirectory = Path.Combine(_root, name),
        TrustDomain = "mesh.test",
        NodeName = name,
        Listen = new IPEndPoint(IPAddress.Loopback, 0),
        Join = join ?? [],
        JoinToken = token,
    });

    private static string CreateToken(AgentHost first)
    {
        using X509Certificate2 root = X509CertificateLoader.LoadCertificate(first.Authority.Root.RawData);
        return new JoinTokenStore(first.Options.StateDirectory, JoinToken.FingerprintOf(root)).Create(TimeSpan.FromMinutes(5)).ToString();
    }
}
