using System.Net;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;
using Beemesh.Agent.Mesh;
using Beemesh.Identity.Join;
using Beemesh.Overlay.Records;

namespace Beemesh.Agent.Tests.Mesh;

public sealed class NodeRemovalTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("bm-rm-").FullName;

    [Fact]
    public async Task RemovedNodeLosesItsRoutesRecordsLinksAndName()
    {
        await using AgentHost first = await Start("a", join: null, token: null);
        await using AgentHost second = await Start("b", [first.NodeEndPoint!], CreateToken(first));
        await using AgentHost third = await Start("c", [first.NodeEndPoint!], CreateToken(first));
        using var onA = new AgentClient(first.Options.StateDirectory);
        using var onB = new AgentClient(second.Options.StateDirectory);
        using var onC = new AgentClient(third.Options.StateDirectory);

        await onC.RegisterWorkloadAsync(AgentFixture.Workload("web", "shop"));
        foreach (AgentHost host in new[] { first, second })
        {
            await ChangeWait.UntilAsync(host.Workloads, () => host.Workloads.Resolve("web.shop") is not null);
            Assert.Equal("c", host.Workloads.Resolve("web.shop")!.Node);
        }

        // Only the node holding the root key revokes; it cannot revoke itself.
        AgentApiException elsewhere = await Assert.ThrowsAsync<AgentApiException>(() => onB.RemoveNodeAsync("c"));
        Assert.Equal(HttpStatusCode.Conflict, elsewhere.StatusCode);
        Assert.Contains("run it on the first node", elsewhere.Message, StringComparison.Ordinal);
        AgentApiException self = await Assert.ThrowsAsync<AgentApiException>(() => onA.RemoveNodeAsync("a"));
        Assert.Equal(HttpStatusCode.BadRequest, self.StatusCode);
        AgentApiException badName = await Assert.ThrowsAsync<AgentApiException>(() => onA.RemoveNodeAsync("Not_A_Name"));
        Assert.Equal(HttpStatusCode.BadRequest, badName.StatusCode);

        Assert.Empty(first.Overlay!.Verifier.Revoked);
        Assert.True(await onA.RemoveNodeAsync("c"));

        // c's routes vanish on a and b; both list c as revoked.
        foreach ((AgentHost host, AgentClient client) in new[] { (first, onA), (second, onB) })
        {
            await ChangeWait.UntilAsync(host.Workloads, () => host.Workloads.Resolve("web.shop") is null);
            Assert.Null(host.Workloads.Resolve("web.shop"));
            MembersReport report = await client.GetMembersAsync();
            Assert.Equal(["c"], report.Revoked);
            Assert.Equal("revoked", Assert.Single(report.Nodes, n => n.Name == "c").State);
            Assert.DoesNotContain("c", report.Active);
            Assert.Equal(1, host.Overlay!.Counters.GetValueOrDefault("nodes_revoked"));

            // Sidecars learn the revoked names with the workload list (to cut what c's node CA issued).
            await ChangeWait.UntilAsync(host.Workloads, () => host.Workloads.Snapshot().RevokedNodes.Contains("c"));
            Assert.Equal(["c"], (await client.WatchWorkloadsAsync(null, -1, TimeSpan.Zero)).RevokedNodes);
        }

        // A record c signs afterwards is refused as signed by a revoked signer (and counted when it arrives).
        OverlayRecord late = await third.Overlay!.PublishAsync(new RecordContent(RecordKind.Route, "late", new byte[] { 1 }, Leased: true));
        Assert.Equal(RecordRefusal.RevokedSigner, second.Overlay!.Verifier.Verify(late));
        Assert.Equal(RecordRefusal.RevokedSigner, first.Overlay.Verifier.Verify(late));
        Assert.Null(first.Overlay.Verifier.Verify(await second.Overlay.PublishAsync(new RecordContent(RecordKind.Route, "fine", new byte[] { 1 }, Leased: true))));

        // c's attempts to link again are refused by both.
        // c dials a or b again (it lost its links); whichever it reaches refuses and counts it.
        await ChangeWait.UntilAsync([first.Overlay, second.Overlay], () => first.Overlay.Counters.GetValueOrDefault("links_refused_revoked") + second.Overlay.Counters.GetValueOrDefault("links_refused_revoked") > 0);
        Assert.True(first.Overlay.Counters.GetValueOrDefault("links_refused_revoked") + second.Overlay.Counters.GetValueOrDefault("links_refused_revoked") > 0);

        // The removed name cannot join again, even with a fresh token.
        Exception rejoin = await Assert.ThrowsAnyAsync<Exception>(() => Start("c2", [first.NodeEndPoint!], CreateToken(first), nodeName: "c"));
        Assert.Contains("node name c", rejoin.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RevocationsSurviveRestarts()
    {
        AgentHost first = await Start("a", join: null, token: null);
        AgentHost? restarted = null;
        try
        {
            await using AgentHost second = await Start("b", [first.NodeEndPoint!], CreateToken(first));
            await using AgentHost third = await Start("c", [first.NodeEndPoint!], CreateToken(first));
            using (var onA = new AgentClient(first.Options.StateDirectory))
            {
                Assert.True(await onA.RemoveNodeAsync("c"));
            }

            ulong c = NodeIds.Of("mesh.test", "c");
            await ChangeWait.UntilAsync(second.Overlay!, () => second.Overlay!.Verifier.Revoked.ContainsKey(c));
            Assert.True(second.Overlay!.Verifier.Revoked.ContainsKey(c));

            // A joined node restarted with no contact to learn it from refuses c from its start.
            await second.DisposeAsync();
            await using (AgentHost alone = await Start("b", join: null, token: null))
            {
                Assert.True(alone.Overlay!.Verifier.Revoked.ContainsKey(c));
                Assert.Equal("c", alone.Overlay.RevokedNames[c]);
            }

            // The first node restarts: it refuses c from its start and publishes the revocation again.
            await first.DisposeAsync();
            restarted = await Start("a", join: null, token: null);
            Assert.True(restarted.Overlay!.Verifier.Revoked.ContainsKey(c));
            using var again = new AgentClient(restarted.Options.StateDirectory);
            Assert.Equal(["c"], (await again.GetMembersAsync()).Revoked);
        }
        finally
        {
            await first.DisposeAsync();
            if (restarted is not null)
            {
                await restarted.DisposeAsync();
            }
        }
    }

    [Fact]
    public void RevocationWithoutTheRootsSignatureIsRefused()
    {
        // A revocation record must carry the root's signature over the node it names.
        byte[] statement = NodeRevocation.Statement("mesh.test", "c");
        Assert.NotEmpty(statement);
        using var other = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=not-the-root", other, System.Security.Cryptography.HashAlgorithmName.SHA256);
        using X509Certificate2 root = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1));
        byte[] forged = other.SignData(statement, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        Assert.True(NodeRevocation.Verify(root, "mesh.test", "c", forged));
        Assert.False(NodeRevocation.Verify(root, "mesh.test", "b", forged));
        Assert.False(NodeRevocation.Verify(root, "other.test", "c", forged));
        using var stranger = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        using X509Certificate2 strangerRoot = new CertificateRequest("CN=stranger", stranger, System.Security.Cryptography.HashAlgorithmName.SHA256)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1));
        Assert.False(NodeRevocation.Verify(strangerRoot, "mesh.test", "c", forged));
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

    private Task<AgentHost> Start(string dir, EndPoint[]? join, string? token, string? nodeName = null) =>
        MeshNodes.StartAsync(_root, dir, join, token, o => o.NodeName = nodeName ?? dir);

    private static string CreateToken(AgentHost first) => MeshNodes.CreateToken(first).ToString();
}
