namespace Beemesh.Netstack.Wire;

/// <summary>Flags of <c>struct virtio_net_hdr</c> (virtio spec §5.1.6, linux/virtio_net.h).</summary>
[Flags]
public enum VirtioNetHeaderFlags : byte
{
    /// <summary>No flag: the checksum is complete (or none is needed).</summary>
    None = 0,

    /// <summary>VIRTIO_NET_HDR_F_NEEDS_CSUM: a partial checksum sits at csum_start + csum_offset; finish it.</summary>
    NeedsChecksum = 1,

    /// <summary>VIRTIO_NET_HDR_F_DATA_VALID: the checksum was already validated.</summary>
    DataValid = 2,
}
