using Beemesh.Sidecar.State;

namespace Beemesh.Sidecar.Tests.State;

/// <summary><c>--state NAME[=CONSISTENCY]</c> parsing.</summary>
public sealed class StateStoreSpecTests
{
    [Theory]
    [InlineData("statestore", "statestore")]
    [InlineData("orders=eventual", "orders")]
    [InlineData("my-store_1.v2=eventual", "my-store_1.v2")]
    public void EventualStoresParse(string text, string name)
    {
        Assert.Equal(new StateStoreSpec(name, "eventual"), StateStoreSpec.TryParse(text, out string? error));
        Assert.Null(error);
    }

    [Fact]
    public void StrongStoresParse()
    {
        Assert.Equal(new StateStoreSpec("orders", "strong"), StateStoreSpec.TryParse("orders=strong", out string? error));
        Assert.Null(error);
    }

    [Theory]
    [InlineData("statestore=linear", "unknown consistency 'linear'")]
    [InlineData("=eventual", "invalid state store name ''")]
    [InlineData("a/b", "invalid state store name 'a/b'")]
    [InlineData("a||b", "invalid state store name 'a||b'")]
    public void OthersAreRefusedWithTheReason(string text, string reason)
    {
        Assert.Null(StateStoreSpec.TryParse(text, out string? error));
        Assert.Contains(reason, error, StringComparison.Ordinal);
    }

    [Fact]
    public void TheEnvironmentNamesDaprsPortsAndEndpoints()
    {
        Dictionary<string, string> environment = WorkloadStateApi.Environment("orders");
        Assert.Equal("3500", environment["DAPR_HTTP_PORT"]);
        Assert.Equal("50001", environment["DAPR_GRPC_PORT"]);
        Assert.Equal("http://127.0.0.1:3500", environment["DAPR_HTTP_ENDPOINT"]);
        Assert.Equal("http://127.0.0.1:50001", environment["DAPR_GRPC_ENDPOINT"]);
        Assert.Equal("orders", environment["APP_ID"]);
    }
}
