using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;
using Beemesh.Agent.Mesh;
using Beemesh.Identity.Authority;
using Beemesh.Overlay;
using Beemesh.Overlay.Codec;

namespace Beemesh.Agent.Tests.Mesh;

public sealed class OverlayLinkRefusalTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("bm-lr-").FullName;

    [Fact]
    public async Task BadPeersCostOnlyTheirLinkAndAreCounted()
    {
        await using AgentHost node = await AgentHost.StartAsync(new AgentOptions
        {
            StateDirectory = Path.Combine(_root, "a"),
            TrustDomain = "mesh.test",
            NodeName = "a",
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            TunnelPort = 0,
        });
        using NodeIdentity rogue = NodeIdentity.IssueFromRoot(node.Authority, "rogue");
        using CertificateAuthority foreignRoot = CertificateAuthority.LoadOrCreate(Path.Combine(_root, "foreign"), "mesh.test");
        using NodeIdentity foreign = NodeIdentity.IssueFromRoot(foreignRoot, "b");
        ulong rogueId = NodeIds.Of("mesh.test", "rogue");

        // A node of the trust domain whose hello is followed by a malformed frame: the link closes.
        await using (SslStream link = await ConnectAsync(node.NodeEndPoint!, rogue))
        {
            await link.WriteAsync(OverlayCodec.Encode(OverlayMessage.Hello(new PeerAddress(rogueId, new IPEndPoint(IPAddress.Loopback, 1)), OverlayNode.ProtocolVersion)));
            byte[] reply = new byte[4096];
            Assert.True(await link.ReadAsync(reply) > 0); // the node's hello
            await link.WriteAsync(new byte[] { 0xff, 0xff, 0xff, 0xff, 1, 2, 3 });
            Assert.True(await ClosedByNodeAsync(link));
        }

        // A hello that names another node than the certificate.
        await using (SslStream link = await ConnectAsync(node.NodeEndPoint!, rogue))
        {
            await link.WriteAsync(OverlayCodec.Encode(OverlayMessage.Hello(new PeerAddress(rogueId + 1, new IPEndPoint(IPAddress.Loopback, 1)), OverlayNode.ProtocolVersion)));
            Assert.True(await ClosedByNodeAsync(link));
        }

        // A node SVID of another root with the same trust domain name.
        await using (SslStream link = await ConnectAsync(node.NodeEndPoint!, foreign))
        {
            await link.WriteAsync(OverlayCodec.Encode(OverlayMessage.Hello(new PeerAddress(NodeIds.Of("mesh.test", "b"), null), OverlayNode.ProtocolVersion)));
            Assert.True(await ClosedByNodeAsync(link));
        }

        IReadOnlyDictionary<string, long> counters = node.Overlay!.Counters;
        Assert.Equal(1, counters.GetValueOrDefault("frames_malformed"));
        Assert.Equal(2, counters.GetValueOrDefault("links_refused"));

        // The node keeps serving.
        using var client = new AgentClient(node.Options.StateDirectory);
        Assert.Equal("a", (await client.GetMembersAsync()).Node);
        Assert.Contains("beemesh_overlay_frames_malformed_total 1", await client.GetMetricsAsync(), StringComparison.Ordinal);
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

    private static async Task<SslStream> ConnectAsync(IPEndPoint endpoint, NodeIdentity identity)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint);
        var tls = new SslStream(new NetworkStream(socket, ownsSocket: true));
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "beemesh-overlay",
            EnabledSslProtocols = SslProtocols.Tls13,
            ApplicationProtocols = [NodeListener.OverlayProtocol],
            ClientCertificateContext = identity.Context,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = static (_, _, _, _) => true,
        });
        return tls;
    }

    // True when the node closes the link (end of stream or reset); false when it keeps it open (the
    // bound only keeps a broken build from hanging).
    private static async Task<bool> ClosedByNodeAsync(SslStream link)
    {
        byte[] buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            while (await link.ReadAsync(buffer, timeout.Token) > 0)
            {
            }

            return true;
        }
        catch (IOException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
