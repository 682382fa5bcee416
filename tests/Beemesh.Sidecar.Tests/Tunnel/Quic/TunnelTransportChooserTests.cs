using System.Net;
using Beemesh.Sidecar.Mesh;
using Beemesh.Sidecar.Tunnel.Quic;
using Beemesh.Spiffe;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Sidecar.Tests.Tunnel.Quic;

/// <summary>Which transport a new tunnel connection takes, and the TCP-only period after a failed QUIC connect (fake clock).</summary>
public sealed class TunnelTransportChooserTests
{
    private static readonly SpiffeId Api = SpiffeId.Parse("spiffe://example.org/ns/shop/sa/api");
    private static readonly IPEndPoint NodeTunnel = IPEndPoint.Parse("10.0.0.2:15008");
    private static readonly IPEndPoint NodeQuic = IPEndPoint.Parse("10.0.0.2:15008");
    private static readonly MeshPeer RemoteWithQuic = new(Api, NodeTunnel, IPAddress.Parse("10.200.1.4"), "api.shop.example.org", "n2", NodeQuic);

    [Fact]
    public void ARemoteWorkloadWhoseNodeAdvertisesQuicGoesOverQuic()
    {
        var chooser = new TunnelTransportChooser(quicSupported: true, new FakeTimeProvider());
        Assert.Equal(TunnelTransport.Quic, chooser.Choose(RemoteWithQuic));
    }

    [Fact]
    public void WithoutLibmsquicEverythingGoesOverTcp()
    {
        var chooser = new TunnelTransportChooser(quicSupported: false, new FakeTimeProvider());
        Assert.Equal(TunnelTransport.Tcp, chooser.Choose(RemoteWithQuic));
    }

    [Fact]
    public void ANodeWithoutQuicALocalWorkloadAndARouteWithoutItsNodeGoOverTcp()
    {
        var chooser = new TunnelTransportChooser(quicSupported: true, new FakeTimeProvider());
        Assert.Equal(TunnelTransport.Tcp, chooser.Choose(RemoteWithQuic with { QuicEndpoint = null }));
        Assert.Equal(TunnelTransport.Tcp, chooser.Choose(new MeshPeer(Api, IPEndPoint.Parse("127.0.0.1:40000"), IPAddress.Parse("10.200.0.4"))));
        Assert.Equal(TunnelTransport.Tcp, chooser.Choose(RemoteWithQuic with { ServerName = null }));
        Assert.Equal(TunnelTransport.Tcp, chooser.Choose(RemoteWithQuic with { NodeName = null }));
    }

    [Fact]
    public void AFailedQuicConnectKeepsThatNodeOnTcpForThePeriodThenTriesQuicAgain()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 7, 10, 0, 0, TimeSpan.Zero));
        var chooser = new TunnelTransportChooser(quicSupported: true, clock, TimeSpan.FromMinutes(5));
        MeshPeer otherNode = RemoteWithQuic with { NodeName = "n3", QuicEndpoint = IPEndPoint.Parse("10.0.0.3:15008"), TunnelEndpoint = IPEndPoint.Parse("10.0.0.3:15008") };

        DateTimeOffset until = chooser.QuicFailed(RemoteWithQuic);
        Assert.Equal(clock.GetUtcNow() + TimeSpan.FromMinutes(5), until);
        Assert.Equal(TunnelTransport.Tcp, chooser.Choose(RemoteWithQuic));
        // Another workload of the same node: TCP too; another node: still QUIC.
        Assert.Equal(TunnelTransport.Tcp, chooser.Choose(RemoteWithQuic with { ServerName = "web.shop.example.org" }));
        Assert.Equal(TunnelTransport.Quic, chooser.Choose(otherNode));
        Assert.Equal(1, chooser.TcpOnlyNodes);

        clock.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromTicks(1));
        Assert.Equal(TunnelTransport.Tcp, chooser.Choose(RemoteWithQuic));
        clock.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(TunnelTransport.Quic, chooser.Choose(RemoteWithQuic));
        Assert.Equal(0, chooser.TcpOnlyNodes);
    }

    [Fact]
    public void ASecondFailureRestartsThePeriodAndOldEntriesArePruned()
    {
        var clock = new FakeTimeProvider();
        var chooser = new TunnelTransportChooser(quicSupported: true, clock, TimeSpan.FromMinutes(1));
        MeshPeer otherNode = RemoteWithQuic with { NodeName = "n3", QuicEndpoint = IPEndPoint.Parse("10.0.0.3:15008") };
        chooser.QuicFailed(RemoteWithQuic);
        clock.Advance(TimeSpan.FromSeconds(50));
        chooser.QuicFailed(RemoteWithQuic);
        clock.Advance(TimeSpan.FromSeconds(50));
        Assert.Equal(TunnelTransport.Tcp, chooser.Choose(RemoteWithQuic));
        clock.Advance(TimeSpan.FromSeconds(10));
        chooser.QuicFailed(otherNode);
        Assert.Equal(1, chooser.TcpOnlyNodes);
        Assert.Equal(TunnelTransport.Quic, chooser.Choose(RemoteWithQuic));
    }

    [Fact]
    public void ANegativePeriodIsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TunnelTransportChooser(true, tcpOnlyPeriod: TimeSpan.FromSeconds(-1)));
    }
}
