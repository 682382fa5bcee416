namespace Beemesh.Netstack.Link;

/// <summary>
/// An Ethernet link the stack reads frames from and writes frames to: the tap in production,
/// an in-memory pipe in tests, and decorators (pcap tracer, fault injector) around either.
/// When <see cref="VnetHeader"/> is true every frame starts with a 10-byte virtio_net_hdr.
/// </summary>
public interface ILinkDevice : IDisposable
{
    /// <summary>File descriptor to poll for readability, or -1 for links driven by the caller.</summary>
    int Fd { get; }

    /// <summary>Frames carry a virtio_net_hdr prefix (tap opened with IFF_VNET_HDR).</summary>
    bool VnetHeader { get; }

    /// <summary>The link accepts TCP super-segments with a GSO header (TUNSETOFFLOAD succeeded).</summary>
    bool Offload { get; }

    /// <summary>Reads one frame into <paramref name="buffer"/>; returns its length, 0 when none is ready, -1 when the link is gone.</summary>
    int Read(Span<byte> buffer);

    /// <summary>Writes one frame; false when the link dropped it.</summary>
    bool Write(ReadOnlySpan<byte> frame);
}
