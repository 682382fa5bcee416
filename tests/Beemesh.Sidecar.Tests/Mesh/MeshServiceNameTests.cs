using Beemesh.Sidecar.Mesh;

namespace Beemesh.Sidecar.Tests.Mesh;

public sealed class MeshServiceNameTests
{
    [Theory]
    [InlineData("api.default.svc.cluster.local", "api.default")]
    [InlineData("api.default.svc.cluster.local.", "api.default")]
    [InlineData("API.Default.SVC.Cluster.Local", "api.default")]
    [InlineData("api.default.svc", "api.default")]
    [InlineData("api.default", "api.default")]
    [InlineData("api", "api.shop")]
    [InlineData("api.", "api.shop")]
    [InlineData("web.other.svc.cluster.local", "web.other")]
    [InlineData("api.svc", "api.svc")] // two labels: the service api of namespace svc
    public void TheKubernetesFormsNameAService(string query, string service) =>
        Assert.Equal(service, MeshServiceName.Parse(query, "shop"));

    [Theory]
    [InlineData("api.default.svc.cluster.local.shop.svc.cluster.local")] // a search-list expansion
    [InlineData("api.default.svc.cluster.local.cluster.local")]
    [InlineData("www.example.org")]
    [InlineData("a.b.svc.example")]
    [InlineData("svc.cluster.local")]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("api..default")]
    [InlineData("-api.default")]
    [InlineData("api_x.default")]
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.default")] // a label of 64 characters
    public void OtherNamesAreNotMeshServices(string query) =>
        Assert.Null(MeshServiceName.Parse(query, "shop"));
}
