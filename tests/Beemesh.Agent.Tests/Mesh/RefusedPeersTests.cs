using System.Net;
using System.Text;
using System.Text.Json;
using Beemesh.Agent.Client;
using Beemesh.Agent.Mesh;
using Beemesh.Overlay;
using Beemesh.Overlay.Records;

namespace Beemesh.Agent.Tests.Mesh;

/// <summary>Which addresses the tunnel port refuses, from the node records and the revoked nodes.</summary>
public sealed class RefusedPeersTests
{
    private const long Now = 10_000_000;

    [Fact]
    public void TheOverlayAndTunnelAddressesOfARevokedNodeAreRefused_AndOnlyThose()
    {
        var remembered = new HashSet<IPAddress>();
        HashSet<IPAddress> refused = RouteSync.ChooseRefusedPeers(
            [Node(1, "a", "10.0.0.1:15010", "10.0.0.1:15008"), Node(2, "b", "10.0.0.2:15010", "[fd00::2]:15008")],
            new Dictionary<ulong, string> { [2] = "b" }, Now, remembered);

        Assert.Equal([IPAddress.Parse("10.0.0.2"), IPAddress.Parse("fd00::2")], refused.OrderBy(a => a.ToString()));
        Assert.Equal(refused, remembered);
    }

    [Fact]
    public void AnAddressALiveUnrevokedNodeClaims_IsNeverRefused()
    {
        // b put a's address in its record before its removal.
        var remembered = new HashSet<IPAddress>();
        HashSet<IPAddress> refused = RouteSync.ChooseRefusedPeers(
            [Node(1, "a", "10.0.0.1:15010", "10.0.0.1:15008"), Node(2, "b", "10.0.0.1:15010", "10.0.0.2:15008")],
            new Dictionary<ulong, string> { [2] = "b" }, Now, remembered);

        Assert.Equal([IPAddress.Parse("10.0.0.2")], refused);
        Assert.Contains(IPAddress.Parse("10.0.0.1"), remembered); // remembered, yet left out while a claims it
    }

    [Fact]
    public void AnExpiredRecordOfAnUnrevokedNode_DoesNotShieldTheAddress()
    {
        HashSet<IPAddress> refused = RouteSync.ChooseRefusedPeers(
            [Node(1, "a", "10.0.0.1:15010", null, expiresAt: Now), Node(2, "b", "10.0.0.1:15010", null)],
            new Dictionary<ulong, string> { [2] = "b" }, Now, []);

        Assert.Equal([IPAddress.Parse("10.0.0.1")], refused);
    }

    [Fact]
    public void RevokedAddressesStayRefusedAfterTheRecordsLeave_UntilALiveNodeClaimsThem()
    {
        var revoked = new Dictionary<ulong, string> { [2] = "b" };
        var remembered = new HashSet<IPAddress>();
        RouteSync.ChooseRefusedPeers([Node(2, "b", "10.0.0.2:15010", null)], revoked, Now, remembered);

        Assert.Equal([IPAddress.Parse("10.0.0.2")], RouteSync.ChooseRefusedPeers([], revoked, Now, remembered));

        // A new node c now uses that address: it is not refused.
        Assert.Empty(RouteSync.ChooseRefusedPeers([Node(3, "c", "10.0.0.2:15010", null)], revoked, Now, remembered));
    }

    [Fact]
    public void RecordsThatDoNotSpeakForTheRevokedNodeAddNothing()
    {
        var revoked = new Dictionary<ulong, string> { [2] = "b" };
        var remembered = new HashSet<IPAddress>();
        HashSet<IPAddress> refused = RouteSync.ChooseRefusedPeers(
            [
                Node(2, "other-key", "10.0.0.5:15010", null), // signed by b under another node's key
                Node(2, "b", "10.0.0.6:15010", null, tombstone: true),
                Record(2, RecordKind.Route, "b", Payload("10.0.0.7:15010", null)),
                Record(2, RecordKind.Node, "b", Encoding.UTF8.GetBytes("{not json")),
            ],
            revoked, Now, remembered);

        Assert.Empty(refused);
        Assert.Empty(remembered);
    }

    [Fact]
    public void LoopbackAndUnspecifiedAddressesAreNeverRefused_AndMappedOnesAreNormalised()
    {
        HashSet<IPAddress> refused = RouteSync.ChooseRefusedPeers(
            [Node(2, "b", "127.0.0.1:15010", "0.0.0.0:15008"), Node(3, "c", "[::ffff:10.0.0.3]:15010", "[::1]:15008")],
            new Dictionary<ulong, string> { [2] = "b", [3] = "c" }, Now, []);

        Assert.Equal([IPAddress.Parse("10.0.0.3")], refused);
    }

    [Fact]
    public void NoRevokedNode_RefusesNothing()
    {
        Assert.Empty(RouteSync.ChooseRefusedPeers([Node(1, "a", "10.0.0.1:15010", "10.0.0.1:15008")], new Dictionary<ulong, string>(), Now, []));
    }

    private static OverlayRecord Node(ulong origin, string key, string overlay, string? tunnel, long expiresAt = 0, bool tombstone = false) =>
        Record(origin, RecordKind.Node, key, tombstone ? [] : Payload(overlay, tunnel), expiresAt, tombstone);

    private static byte[] Payload(string overlay, string? tunnel) =>
        JsonSerializer.SerializeToUtf8Bytes(new NodeRecordPayload { Name = "n", Overlay = overlay, Tunnel = tunnel }, AgentJsonContext.Default.NodeRecordPayload);

    private static OverlayRecord Record(ulong origin, RecordKind kind, string key, byte[] payload, long expiresAt = 0, bool tombstone = false) =>
        new(kind, key, origin, new RecordVersion(new HlcTimestamp(1_000_000, 0), origin), expiresAt, tombstone, payload);
}
