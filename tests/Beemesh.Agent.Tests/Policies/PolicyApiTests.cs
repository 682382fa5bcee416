using System.Net;
using Beemesh.Agent.Client;
using Beemesh.Authorization;

namespace Beemesh.Agent.Tests.Policies;

public sealed class PolicyApiTests
{
    [Fact]
    public async Task MultiDocumentFileIsAppliedAndEachDocumentReloads()
    {
        await using var agent = await AgentFixture.StartAsync();
        PolicyApplyResult result = await agent.Client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies);
        Assert.Equal(1, result.Version);
        Assert.Equal(["shop/allow-web", "shop/no-admin"], result.Applied);

        PolicySet set = await agent.Client.ListPoliciesAsync();
        Assert.Equal(1, set.Version);
        Assert.Equal(["allow-web", "no-admin"], set.Policies.Select(p => p.Name));
        Assert.Equal(["ALLOW", "DENY"], set.Policies.Select(p => p.Action));
        Assert.DoesNotContain("no-admin", set.Policies[0].Yaml, StringComparison.Ordinal);
        foreach (PolicyDocument document in set.Policies)
        {
            Assert.True(PolicyLoader.Load(document.Yaml, out var one, out _));
            Assert.Equal(document.Name, Assert.Single(one).Name);
        }

        Assert.True(PolicyLoader.Load(set.ToYaml(), out var all, out _));
        Assert.Equal(2, all.Count);
    }

    [Fact]
    public async Task BadFileIsRefusedWholeWithLineNumbers()
    {
        await using var agent = await AgentFixture.StartAsync();
        var refused = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.ApplyPoliciesAsync(PolicyTexts.BadSecondDocument));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("nothing was applied", refused.Message, StringComparison.Ordinal);
        string detail = Assert.Single(refused.Details);
        Assert.StartsWith("line 11,", detail, StringComparison.Ordinal);
        Assert.Contains("ports", detail, StringComparison.Ordinal);

        PolicySet set = await agent.Client.ListPoliciesAsync();
        Assert.Empty(set.Policies);
        Assert.Equal(0, set.Version);
    }

    [Fact]
    public async Task RefusalIsOneLineOfJsonWithItemizedErrors()
    {
        await using var agent = await AgentFixture.StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/policies") { Content = new StringContent(PolicyTexts.BadSecondDocument) };
        using HttpResponseMessage response = await agent.Client.SendRawAsync(request);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        string body = await response.Content.ReadAsStringAsync();
        Assert.Equal(body.Length - 1, body.IndexOf('\n', StringComparison.Ordinal));
        Assert.Contains("\"details\":[\"line 11, column", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReapplyingReplacesThePolicyOfTheSameName()
    {
        await using var agent = await AgentFixture.StartAsync();
        await agent.Client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies);
        await agent.Client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies.Replace("action: DENY", "action: AUDIT", StringComparison.Ordinal));
        PolicySet set = await agent.Client.ListPoliciesAsync();
        Assert.Equal(["ALLOW", "AUDIT"], set.Policies.Select(p => p.Action));
        Assert.Contains("AUDIT", set.Policies[1].Yaml, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EveryChangeBumpsTheVersionAndDeleteRemoves()
    {
        await using var agent = await AgentFixture.StartAsync();
        Assert.Equal(1, (await agent.Client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies)).Version);
        Assert.Equal(2, (await agent.Client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies)).Version);
        Assert.True(await agent.Client.DeletePolicyAsync("shop", "no-admin"));
        Assert.False(await agent.Client.DeletePolicyAsync("shop", "no-admin"));
        PolicySet set = await agent.Client.ListPoliciesAsync();
        Assert.Equal(3, set.Version);
        Assert.Equal("allow-web", Assert.Single(set.Policies).Name);
    }

    [Fact]
    public async Task WatchAnswersAtOnceWhenBehind()
    {
        await using var agent = await AgentFixture.StartAsync();
        await agent.Client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies);
        PolicySet set = await agent.Client.WatchPoliciesAsync(0);
        Assert.Equal(1, set.Version);
        Assert.Equal(2, set.Policies.Count);
    }

    [Fact]
    public async Task WatchWakesOnAChangeNotOnItsTimeout()
    {
        // The agent's clock is stopped: the watch's 30 s timeout cannot fire, so only the change can wake it.
        await using var agent = await AgentFixture.StartAsync(fakeTime: true);
        Task<PolicySet> watch = agent.Client.WatchPoliciesAsync(0);
        await WaitForWaiterAsync(agent);
        Assert.False(watch.IsCompleted);
        await agent.Client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies);
        PolicySet set = await watch.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, set.Version);
        Assert.Equal(2, set.Policies.Count);
        Assert.Equal(0, agent.Host.Policies.Waiters);
    }

    [Fact]
    public async Task WatchTimesOutCleanlyWithTheUnchangedSet()
    {
        await using var agent = await AgentFixture.StartAsync(fakeTime: true);
        await agent.Client.ApplyPoliciesAsync(PolicyTexts.TwoPolicies);
        Task<PolicySet> watch = agent.Client.WatchPoliciesAsync(1);
        await WaitForWaiterAsync(agent);
        Assert.False(watch.IsCompleted);
        agent.Time!.Advance(TimeSpan.FromSeconds(30));
        PolicySet set = await watch.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, set.Version);
        Assert.Equal(2, set.Policies.Count);
        Assert.Equal(0, agent.Host.Policies.Waiters);
    }

    [Fact]
    public async Task EmptyFileIsRefused()
    {
        await using var agent = await AgentFixture.StartAsync();
        var refused = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.ApplyPoliciesAsync("# nothing\n"));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("no AuthorizationPolicy", Assert.Single(refused.Details), StringComparison.Ordinal);
    }

    // Waits (bounded) until the agent holds the watch, so the change below cannot race ahead of it.
    private static async Task WaitForWaiterAsync(AgentFixture agent)
    {
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30)); // keeps a broken build from hanging; measures nothing
        await agent.Host.Policies.WaitForWaitersAsync(1, patience.Token);
        Assert.Equal(1, agent.Host.Policies.Waiters);
    }
}
