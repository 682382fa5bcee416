using Beemesh.Spiffe.WorkloadApi;

namespace Beemesh.Spiffe.Tests.WorkloadApi;

public sealed class WorkloadApiEndpointTests
{
    [Theory]
    [InlineData("unix:///run/spire/agent.sock", "/run/spire/agent.sock")]
    [InlineData("unix:/run/spire/agent.sock", "/run/spire/agent.sock")]
    public void ParsesUnixAddresses(string address, string path) => Assert.Equal(path, WorkloadApiEndpoint.TryParseUnixPath(address));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("/run/agent.sock")]
    [InlineData("unix://host/run/agent.sock")]
    [InlineData("unix:relative.sock")]
    [InlineData("tcp://127.0.0.1:8081")]
    [InlineData("unix:///run/agent.sock?x=1")]
    public void RejectsOtherAddresses(string? address) => Assert.Null(WorkloadApiEndpoint.TryParseUnixPath(address));
}
