using System.Net;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;
using Beemesh.Identity.Join;
using Beemesh.Overlay.Records;
using Beemesh.Spiffe.Jwt;
using Beemesh.Spiffe.WorkloadApi;
using Grpc.Core;

namespace Beemesh.Agent.Tests.Mesh;

/// <summary>JWT-SVIDs across nodes: each node's JWT key reaches every other node's Workload API bundle.</summary>
public sealed class CrossNodeJwtTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("bm-jw-").FullName;

    [SkippableFact]
    public async Task AJwtSvidMintedOnOneNodeValidatesThroughAnothersWorkloadApiUntilItsNodeIsRemoved()
    {
        Skip.IfNot(WorkloadRelay.Available, "python3 is not installed (/usr/bin/python3)");
        await using AgentHost first = await Start("a", join: null, token: null);
        await using AgentHost second = await Start("b", [first.NodeEndPoint!], CreateToken(first));
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using WorkloadRelay onA = await WorkloadRelay.StartAsync(first.WorkloadApiSocketPath, Path.Combine(_root, "a.sock"));
        using WorkloadRelay onB = await WorkloadRelay.StartAsync(second.WorkloadApiSocketPath, Path.Combine(_root, "b.sock"));
        using (var admin = new AgentClient(first.Options.StateDirectory))
        {
            await admin.RegisterWorkloadAsync(AgentFixture.Workload("web", "shop", onA.ProcessId), cancel.Token);
        }

        using (var admin = new AgentClient(second.Options.StateDirectory))
        {
            await admin.RegisterWorkloadAsync(AgentFixture.Workload("api", "shop", onB.ProcessId), cancel.Token);
        }

        using var apiA = new WorkloadApiClient(onA.SocketPath);
        using var apiB = new WorkloadApiClient(onB.SocketPath);
        string kidA = JwtBundle.KeyIdOf(first.Authority.OwnJwtBundle.Keys.Values.Single());
        string kidB = JwtBundle.KeyIdOf(second.Authority.OwnJwtBundle.Keys.Values.Single());
        Assert.NotEqual(kidA, kidB);
        await ChangeWait.UntilAsync(second.JwtKeys!, () => second.Authority.JwtBundle.Keys.ContainsKey(kidA));
        await ChangeWait.UntilAsync(first.JwtKeys!, () => first.Authority.JwtBundle.Keys.ContainsKey(kidB));

        // Minted on a for audience "api", validated by the workload on b through b's Workload API.
        string token = Assert.Single(await apiA.FetchJwtSvidsAsync(["api"], cancellationToken: cancel.Token)).Token;
        (Beemesh.Spiffe.SpiffeId subject, string claims) = await apiB.ValidateJwtSvidAsync(token, "api", cancel.Token);
        Assert.Equal("spiffe://mesh.test/ns/shop/sa/web", subject.ToString());
        Assert.Contains("\"api\"", claims, StringComparison.Ordinal);

        // b's JWT bundle carries both nodes' keys; a's carries both too.
        JwtBundle bundleOnB = (await apiB.FetchJwtBundlesAsync(cancel.Token))["mesh.test"];
        Assert.Contains(kidA, bundleOnB.Keys.Keys);
        Assert.Contains(kidB, bundleOnB.Keys.Keys);
        string fromB = Assert.Single(await apiB.FetchJwtSvidsAsync(["web"], cancellationToken: cancel.Token)).Token;
        Assert.Equal("spiffe://mesh.test/ns/shop/sa/api", (await apiA.ValidateJwtSvidAsync(fromB, "web", cancel.Token)).Id.ToString());

        // A JWKS record b signs for another node's name is not taken.
        using var stray = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        string strayKid = JwtBundle.KeyIdOf(stray);
        byte[] strayJwks = new JwtBundle(new Dictionary<string, System.Security.Cryptography.ECDsa> { [strayKid] = stray }).ToJwks();
        OverlayRecord forged = await second.Overlay!.PublishAsync(new RecordContent(RecordKind.Bundle, "jwt/c", strayJwks, Leased: true));
        await ChangeWait.UntilAsync(first.Overlay!, async () => await first.Overlay!.QueryAsync(n => n.Store.Get(forged.Slot) is not null));
        Dictionary<string, byte[]> collected = await first.Overlay!.QueryAsync(n => Beemesh.Agent.Mesh.JwtKeySync.PeerKeys(n, first.Overlay));
        Assert.Equal([kidB], collected.Keys);
        Assert.DoesNotContain(strayKid, first.Authority.JwtBundle.Keys.Keys);

        // Once b is removed, its key leaves a's bundle and its tokens no longer validate there.
        using (var admin = new AgentClient(first.Options.StateDirectory))
        {
            Assert.True(await admin.RemoveNodeAsync("b", cancel.Token));
        }

        await ChangeWait.UntilAsync(first.JwtKeys!, () => !first.Authority.JwtBundle.Keys.ContainsKey(kidB));
        RpcException refused = await Assert.ThrowsAsync<RpcException>(() => apiA.ValidateJwtSvidAsync(fromB, "web", cancel.Token));
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Contains("UnknownKey", refused.Status.Detail, StringComparison.Ordinal);
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

    private Task<AgentHost> Start(string name, EndPoint[]? join, string? token) => MeshNodes.StartAsync(_root, name, join, token);

    private static string CreateToken(AgentHost first) => MeshNodes.CreateToken(first).ToString();
}
