using Beemesh.Overlay.Records;
using Beemesh.Overlay.Simulation;

namespace Beemesh.Overlay.Tests;

public sealed class RecordTests
{
    private static RecordContent Route(string key, bool leased = true, ulong? subject = null) =>
        new(RecordKind.Route, key, new byte[] { 1, 2, 3 }, leased, subject);

    [Fact]
    public void HybridLogicalClockNeverGoesBackAndFollowsWhatItSaw()
    {
        var clock = new HybridLogicalClock();
        HlcTimestamp a = clock.Now(100);
        HlcTimestamp b = clock.Now(100);
        HlcTimestamp c = clock.Now(50); // the physical clock stepped back
        Assert.True(a < b && b < c);
        clock.Observe(new HlcTimestamp(1_000, 7), 60);
        HlcTimestamp d = clock.Now(70);
        Assert.True(d > new HlcTimestamp(1_000, 7));
        Assert.Equal(1_000, d.Physical);
        Assert.Equal(new HlcTimestamp(2_000, 0), clock.Now(2_000));
    }

    [Fact]
    public void VersionsOrderByTimeThenOrigin()
    {
        var t = new HlcTimestamp(5, 1);
        Assert.True(new RecordVersion(t, 2) > new RecordVersion(t, 1));
        Assert.True(new RecordVersion(new HlcTimestamp(5, 2), 1) > new RecordVersion(t, 9));
        Assert.True(new RecordVersion(new HlcTimestamp(6, 0), 1) > new RecordVersion(new HlcTimestamp(5, 99), 9));
    }

    [Fact]
    public void PublishedRecordReachesEveryNodeAndANewerVersionReplacesIt()
    {
        var net = new LocalNetwork(6);
        net.StartAll();
        OverlayRecord first = net[3].Publish(Route("web.shop"), net.Now);
        net.Deliver();
        Assert.All(net.All, n => Assert.Equal(first.Version, n.Store.Get(first.Slot)!.Version));
        net.Now += 1000;
        OverlayRecord second = net[3].Publish(Route("web.shop"), net.Now);
        net.Deliver();
        Assert.True(second.Version > first.Version);
        Assert.All(net.All, n => Assert.Equal(second.Version, n.Store.Get(first.Slot)!.Version));
        Assert.Empty(net.Observer.Refused);
    }

    [Fact]
    public void ReplayOfAnOlderVersionIsRefusedAndCounted()
    {
        var net = new LocalNetwork(2);
        net.StartAll();
        OverlayRecord old = net[1].Publish(Route("web.shop"), net.Now);
        net.Deliver();
        net.Now += 1000;
        OverlayRecord current = net[1].Publish(Route("web.shop"), net.Now);
        net.Deliver();
        net[2].Step(net[1].Self, OverlayMessage.Gossip(old), net.Now);
        Assert.Contains((2UL, RecordRefusal.Replay), net.Observer.Refused);
        Assert.Equal(current.Version, net[2].Store.Get(old.Slot)!.Version);
    }

    [Fact]
    public void ForgedRecordsAreRefusedByReason()
    {
        var net = new LocalNetwork(2);
        net.StartAll();
        long now = net.Now;
        var version = new RecordVersion(new HlcTimestamp(now + 1, 0), 1);

        // Altered after signing: bad signature.
        OverlayRecord signed = new OverlayRecord(RecordKind.Policy, "p", 1, version, 0, false, new byte[] { 1 });
        signed = signed.WithSignature(net.Signature.Sign(signed));
        var altered = new OverlayRecord(RecordKind.Policy, "p", 1, version, 0, false, new byte[] { 2 }, signed.Signature);
        net[2].Step(net[1].Self, OverlayMessage.Gossip(altered), now);

        // Signed in another trust domain.
        var foreign = new OverlayRecord(RecordKind.Policy, "q", 1, version, 0, false, new byte[] { 1 });
        foreign = foreign.WithSignature(net.Signature.Foreign().Sign(foreign));
        net[2].Step(net[1].Self, OverlayMessage.Gossip(foreign), now);

        // A route naming node 2, signed by node 1.
        var route = new OverlayRecord(RecordKind.Route, "r", 2, version, now + 1_000_000, false, new byte[] { 1 });
        route = route.WithSignature(net.Signature.Sign(route));
        net[2].Step(net[1].Self, OverlayMessage.Gossip(route), now);

        // A revoked signer.
        net.Signature.Revoked.Add(1);
        var revoked = new OverlayRecord(RecordKind.Node, "n", 1, version, 0, false, new byte[] { 1 });
        revoked = revoked.WithSignature(net.Signature.Sign(revoked));
        net[2].Step(net[1].Self, OverlayMessage.Gossip(revoked), now);

        Assert.Equal(
            [RecordRefusal.BadSignature, RecordRefusal.ForeignChain, RecordRefusal.RouteSignerMismatch, RecordRefusal.RevokedSigner],
            net.Observer.Refused.Where(r => r.Node == 2).Select(r => r.Reason));
        Assert.Equal(0, net[2].Store.Count);
        // A refused record is not passed on.
        Assert.DoesNotContain(net[2].Outbox, m => m.Message.Type == OverlayMessageType.Gossip);
    }

    [Fact]
    public void RouteSignedByTheNodeItNamesIsAccepted()
    {
        var net = new LocalNetwork(2);
        net.StartAll();
        net[1].Publish(Route("web.shop", subject: 1), net.Now);
        net.Deliver();
        Assert.NotNull(net[2].Store.Get(new RecordSlot(RecordKind.Route, "web.shop")));
    }

    [Fact]
    public void TombstoneReplacesTheRecordAndExpires()
    {
        var options = new OverlayOptions { TombstoneLifetime = 5_000_000 };
        var net = new LocalNetwork(3, options);
        net.StartAll();
        OverlayRecord record = net[1].Publish(new RecordContent(RecordKind.Policy, "deny-all", new byte[] { 9 }), net.Now);
        net.Deliver();
        net.Now += 10;
        net[1].Delete(RecordKind.Policy, "deny-all", net.Now);
        net.Deliver();
        Assert.All(net.All, n => Assert.True(n.Store.Get(record.Slot)!.Tombstone));

        // The old version arriving late is a replay, not a resurrection.
        net[3].Step(net[2].Self, OverlayMessage.Gossip(record), net.Now);
        Assert.True(net[3].Store.Get(record.Slot)!.Tombstone);

        net.Run(6_000_000);
        Assert.All(net.All, n => Assert.Null(n.Store.Get(record.Slot)));
    }

    [Fact]
    public void LeaseIsRenewedByItsOriginAndVanishesWhenTheOriginStops()
    {
        var options = new OverlayOptions { LeaseDuration = 9_000_000, LeaseRenewInterval = 3_000_000 };
        var net = new LocalNetwork(3, options);
        net.StartAll();
        OverlayRecord lease = net[1].Publish(Route("api.shop"), net.Now);
        net.Deliver();
        net.Run(20_000_000);
        OverlayRecord? held = net[3].Store.Get(lease.Slot);
        Assert.NotNull(held);
        Assert.True(held.Version > lease.Version, "the origin renewed its lease");

        // Node 1 stops (no Leave: it just dies); its lease vanishes on the others within the lease time.
        net.Drop = (from, to, _) => from == 1 || to == 1;
        long stopped = net.Now;
        net.Run(options.LeaseDuration + 2_000_000);
        Assert.Null(net[2].Store.Get(lease.Slot));
        Assert.Null(net[3].Store.Get(lease.Slot));

        // An expired copy is refused, not stored again.
        net.Drop = null;
        net[3].Step(net[2].Self, OverlayMessage.Gossip(held), net.Now);
        Assert.Contains((3UL, RecordRefusal.Expired), net.Observer.Refused);
        Assert.True(net.Now - stopped >= options.LeaseDuration);
    }

    [Fact]
    public void NewLinkExchangesDigestsSoBothSidesCatchUp()
    {
        var net = new LocalNetwork(2);
        net[1].Start([], 0);
        net[2].Start([], 0);
        net[1].Publish(new RecordContent(RecordKind.Policy, "a", new byte[] { 1 }), 1);
        net[2].Publish(new RecordContent(RecordKind.Bundle, "b", new byte[] { 2 }), 1);
        // They meet only now.
        net[2].Step(net[1].Self, new OverlayMessage(OverlayMessageType.Neighbor, net[1].Self, flag: true), 2);
        net.Deliver();
        Assert.Equal(2, net[1].Store.Count);
        Assert.Equal(2, net[2].Store.Count);
    }
}
