using Beemesh.Agent.Hosting;
using Beemesh.Authorization;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Agent.Tests.Mesh;

/// <summary>
/// The mesh's policy set between two agents of this process on a clock that never moves: every timer
/// of the policy sync (and of the overlay) runs on that clock, so a set that waited for one would
/// never arrive. A policy applied or deleted on one node must be published and in force on the other
/// by the changes alone, in both directions.
/// </summary>
public sealed class PolicySyncTests : IDisposable
{
    private const string DenyAll = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: deny-all, namespace: shop}
        spec: {action: DENY, rules: [{}]}
        """;

    private const string AllowWeb = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: allow-web, namespace: shop}
        spec: {action: ALLOW, rules: [{from: [{source: {principals: ["cluster.local/ns/shop/sa/web"]}}]}]}
        """;

    private readonly string _root = Directory.CreateTempSubdirectory("bm-ps-").FullName;

    [Fact]
    public async Task APolicyIsPublishedAndAppliedOnTheOtherNodeWithoutWaitingForATimer()
    {
        var frozen = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using AgentHost a = await MeshNodes.StartAsync(_root, "a", join: null, token: null, o => o.TimeProvider = frozen);
        await using AgentHost b = await MeshNodes.StartAsync(_root, "b", [a.NodeEndPoint!], MeshNodes.CreateToken(a).ToString(), o => o.TimeProvider = frozen);

        Assert.True(b.Policies.Apply(DenyAll, out _, out IReadOnlyList<PolicyError> errors), errors.Count > 0 ? errors[0].ToString() : "");
        await ChangeWait.UntilAsync(a.Policies, () => a.Policies.Count > 0);
        Assert.Equal("deny-all", Assert.Single(a.Policies.Snapshot().Policies).Name);

        // The other way, after the first settled: a change on a reaches b on its own change too.
        Assert.True(a.Policies.Apply(AllowWeb, out _, out errors), errors.Count > 0 ? errors[0].ToString() : "");
        await ChangeWait.UntilAsync(b.Policies, () => b.Policies.Count == 2);
        Assert.Equal(["allow-web", "deny-all"], b.Policies.Snapshot().Policies.Select(p => p.Name).Order(StringComparer.Ordinal));

        // And a delete.
        Assert.NotNull(b.Policies.Delete("shop", "deny-all"));
        await ChangeWait.UntilAsync(a.Policies, () => a.Policies.Count == 1);
        Assert.Equal("allow-web", Assert.Single(a.Policies.Snapshot().Policies).Name);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
