using System.Net;
using System.Text;
using Beemesh.Slirp.Api;

namespace Beemesh.Slirp.Tests.Api;

/// <summary>
/// Golden replies recorded from slirp4netns 1.2.0's API socket (request sent in one write, reply read to EOF).
/// </summary>
public sealed class SlirpApiRequestHandlerTests
{
    private const string ListEmpty = "{\"entries\":[]}";

    private static string Send(SlirpApiRequestHandler handler, string request) =>
        handler.Handle(Encoding.UTF8.GetBytes(request), out _);

    private static SlirpApiRequestHandler NewHandler() => new(new FakePortForwardTable(), IPAddress.Parse("10.0.2.100"));

    [Fact]
    public void Session_MatchesRecordedSlirp4netnsBytes()
    {
        SlirpApiRequestHandler h = NewHandler();

        Assert.Equal("{\"return\":{\"id\":1}}", Send(h, "{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"tcp\", \"host_addr\": \"127.0.0.1\", \"host_port\": 18080, \"guest_addr\": \"10.0.2.100\", \"guest_port\": 80}}"));
        Assert.Equal("{\"return\":{\"id\":2}}", Send(h, "{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"udp\", \"host_port\": 18081, \"guest_port\": 81}}"));
        Assert.Equal(
            "{\"entries\":[{\"id\":1,\"proto\":\"tcp\",\"host_addr\":\"127.0.0.1\",\"host_port\":18080,\"guest_addr\":\"10.0.2.100\",\"guest_port\":80},{\"id\":2,\"proto\":\"udp\",\"host_addr\":\"0.0.0.0\",\"host_port\":18081,\"guest_addr\":\"10.0.2.100\",\"guest_port\":81}]}",
            Send(h, "{\"execute\": \"list_hostfwd\"}"));
        Assert.Equal("{\"return\":{}}", Send(h, "{\"execute\": \"remove_hostfwd\", \"arguments\": {\"id\": 1}}"));
        Assert.Equal("{\"error\":{\"desc\":\"bad request: remove_hostfwd: bad arguments.id\"}}", Send(h, "{\"execute\": \"remove_hostfwd\", \"arguments\": {\"id\": 1}}"));
        Assert.Equal("{\"error\":{\"desc\":\"bad request: remove_hostfwd: bad arguments.id\"}}", Send(h, "{\"execute\": \"remove_hostfwd\"}"));
        Assert.Equal("{\"return\":{\"id\":3}}", Send(h, "{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"tcp\", \"host_port\": 18081, \"guest_port\": 5}}"));
        Assert.Equal("{\"error\":{\"desc\":\"bad request: add_hostfwd: slirp_add_hostfwd failed\"}}", Send(h, "{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"udp\", \"host_port\": 18081, \"guest_port\": 5}}"));
        Assert.Equal("{\"return\":{\"id\":4}}", Send(h, "{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"tcp\", \"host_port\": 18091.9, \"guest_port\": 2.5, \"host_addr\": \"\"}}"));
        Assert.Contains("\"id\":4,\"proto\":\"tcp\",\"host_addr\":\"0.0.0.0\",\"host_port\":18091,\"guest_addr\":\"10.0.2.100\",\"guest_port\":2}", Send(h, "{\"execute\": \"list_hostfwd\"}"), StringComparison.Ordinal);
        Assert.Equal("{\"return\":{}}", Send(h, "{\"execute\": \"remove_hostfwd\", \"arguments\": {\"id\": 3.7}}"));
        Assert.Equal("{\"error\":{\"desc\":\"bad request: remove_hostfwd: bad arguments.id\"}}", Send(h, "{\"execute\": \"remove_hostfwd\", \"arguments\": {\"id\": \"4\"}}"));
    }

    [Theory]
    [InlineData("", "cannot parse JSON")]
    [InlineData("garbage", "cannot parse JSON")]
    [InlineData("[1,2]", "json_object() failed")]
    [InlineData("-", "json_object() failed")]
    [InlineData("{\"x\":1}", "no execute found")]
    [InlineData("{\"execute\": 5}", "no execute found")]
    [InlineData("{\"execute\": \"nope\"}", "unknown execute")]
    [InlineData("{\"execute\": \"list_hostfwd\", \"execute\": \"list_hostfwd\"}", "cannot parse JSON")]
    [InlineData("{\"execute\": \"list_hostfwd\"", "cannot parse JSON")]
    [InlineData("{\"execute\": \"list_hostfwd\",}", "cannot parse JSON")]
    [InlineData("{\"execute\": \"list_hostfwd\", \"a\": -inf}", "cannot parse JSON")]
    [InlineData("{\"execute\": \"list_hostfwd\", \"a\": nan}", "cannot parse JSON")]
    [InlineData("{\"execute\": \"list_hostfwd\", \"a\": 0e5}", "cannot parse JSON")]
    [InlineData("{\"execute\": \"list_hostfwd\", \"a\": 00}", "cannot parse JSON")]
    [InlineData("{\"execute\": \"list_hostfwd\", \"a\": 0x5}", "cannot parse JSON")]
    [InlineData("{\"execute\": \"list_hostfwd\", \"a\": 1e999}", "cannot parse JSON")]
    [InlineData("{\"execute\": \"list_hostfwd\", \"a\": tru}", "cannot parse JSON")]
    [InlineData("{\"execute\": \"list_hostfwd\", \"a\": \"\u0001\"}", "cannot parse JSON")]
    [InlineData("{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"sctp\", \"host_port\": 1, \"guest_port\": 2}}", "add_hostfwd: bad arguments.proto")]
    [InlineData("{\"execute\": \"add_hostfwd\", \"arguments\": 5}", "add_hostfwd: bad arguments.proto")]
    [InlineData("{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"tcp\", \"host_addr\": \"::1\", \"host_port\": 1, \"guest_port\": 2}}", "add_hostfwd: bad arguments.host_addr")]
    [InlineData("{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"tcp\", \"host_addr\": \"127.0.0.01\", \"host_port\": 1, \"guest_port\": 2}}", "add_hostfwd: bad arguments.host_addr")]
    [InlineData("{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"tcp\", \"host_port\": 0, \"guest_port\": 2}}", "add_hostfwd: bad arguments.host_port")]
    [InlineData("{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"tcp\", \"host_port\": \"18090\", \"guest_port\": 2}}", "add_hostfwd: bad arguments.host_port")]
    [InlineData("{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"tcp\", \"host_port\": 70000, \"guest_port\": 2}}", "add_hostfwd: bad arguments.host_port")]
    [InlineData("{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"tcp\", \"host_port\": 18082, \"guest_addr\": \"x\", \"guest_port\": 2}}", "add_hostfwd: bad arguments.guest_addr")]
    [InlineData("{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"tcp\", \"host_port\": 18082, \"guest_port\": 0}}", "add_hostfwd: bad arguments.guest_port")]
    public void BadRequests_HaveSlirp4netnsTexts(string request, string desc)
    {
        string reply = NewHandler().Handle(Encoding.UTF8.GetBytes(request), out bool isError);

        Assert.Equal("{\"error\":{\"desc\":\"bad request: " + desc + "\"}}", reply);
        Assert.True(isError);
    }

    [Theory]
    [InlineData("{\"execute\": \"list_hostfwd\"} trailing")]
    [InlineData("{\"execute\": \"list_hostfwd\", \"a\": 1.}")]
    [InlineData("{\"execute\": \"list_hostfwd\", \"a\": -.5}")]
    [InlineData("{\"execute\": \"list_hostfwd\", \"a\": -0}")]
    [InlineData("{\"execute\": \"list_hostfwd\", \"a\": 1e-999}")]
    [InlineData("{\"execute\": \"list_hostfwd\", \"a\": \"\\u0000\"}")]
    [InlineData("{\"execute\": \"list_hostfwd\\u0000x\"}")]
    [InlineData("\uFEFF{\"execute\": \"list_hostfwd\"}")]
    [InlineData("\v{\"execute\": \"list_hostfwd\"}")]
    [InlineData("{\"execute\": \"list_hostfwd\"}\0junk")]
    [InlineData("{\"execute\": \"list_hostfwd\", \"a\": \"\\/\\ud83d\\ude00\"}")]
    [InlineData("{\"execute\":\"list_hostfwd\",\"arguments\":{\"proto\":\"tcp\"}}")]
    public void LenientInputs_AreAcceptedAsBySlirp4netns(string request)
    {
        string reply = NewHandler().Handle(Encoding.UTF8.GetBytes(request), out bool isError);

        Assert.Equal(ListEmpty, reply);
        Assert.False(isError);
    }

    [Fact]
    public void GuestAddress_DefaultsToTheConfiguredGuest()
    {
        var table = new FakePortForwardTable();
        var handler = new SlirpApiRequestHandler(table, IPAddress.Parse("10.41.0.100"));

        handler.Handle("{\"execute\":\"add_hostfwd\",\"arguments\":{\"proto\":\"tcp\",\"host_port\":8080,\"guest_port\":80}}"u8, out _);

        Assert.Equal(IPAddress.Parse("10.41.0.100"), Assert.Single(table.List()).GuestAddress);
    }

    [Theory]
    [InlineData("{\"execute\":\"add_hostfwd\",\"arguments\":{\"proto\":\"tcp\",\"host_addr\":\"127.0.0.1\",\"host_port\":8080,\"guest_addr\":\"fd00::100\",\"guest_port\":80}}", "fd00::100")]
    [InlineData("{\"execute\":\"add_hostfwd\",\"arguments\":{\"proto\":\"udp\",\"host_addr\":\"::1\",\"host_port\":8080,\"guest_addr\":\"fd00::5054:ff:fe12:3456\",\"guest_port\":80}}", "fd00::5054:ff:fe12:3456")]
    public void Ipv6GuestAddress_IsAcceptedWithIpv6_AndRefusedAsBySlirp4netnsWithout(string request, string guest)
    {
        var without = new FakePortForwardTable();
        var with = new FakePortForwardTable();

        string refused = new SlirpApiRequestHandler(without, IPAddress.Parse("10.0.2.100")).Handle(System.Text.Encoding.UTF8.GetBytes(request), out _);
        string added = new SlirpApiRequestHandler(with, IPAddress.Parse("10.0.2.100"), ipv6: true).Handle(System.Text.Encoding.UTF8.GetBytes(request), out bool isError);

        Assert.StartsWith("{\"error\":{\"desc\":\"bad request: add_hostfwd: bad arguments.", refused, StringComparison.Ordinal);
        Assert.Empty(without.List());
        Assert.False(isError, added);
        Assert.Equal(IPAddress.Parse(guest), Assert.Single(with.List()).GuestAddress);
    }
}
