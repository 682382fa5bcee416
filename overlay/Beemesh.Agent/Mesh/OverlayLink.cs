using System.Net.Security;
using System.Threading.Channels;
using Beemesh.Overlay;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// One TLS link to a peer node: a bounded queue of encoded frames its writer drains, and the stream
/// once connected. Created and retired by the overlay's owner loop only.
/// </summary>
internal sealed class OverlayLink
{
    /// <summary>Frames queued for one peer before the link is taken for stuck and closed.</summary>
    public const int QueueCapacity = 1024;

    public OverlayLink(PeerAddress peer, bool outbound)
    {
        Peer = peer;
        Outbound = outbound;
    }

    public PeerAddress Peer { get; }

    /// <summary>True when this node opened the link.</summary>
    public bool Outbound { get; }

    public Channel<byte[]> Queue { get; } = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(QueueCapacity) { SingleReader = true, SingleWriter = true });

    public CancellationTokenSource Closing { get; } = new();

    public SslStream? Stream { get; set; }

    public void Close()
    {
        Queue.Writer.TryComplete();
        try
        {
            Closing.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
