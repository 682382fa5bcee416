namespace Beemesh.Netstack.Wire;

/// <summary>The gso_type byte of <c>struct virtio_net_hdr</c> (linux/virtio_net.h); <see cref="Ecn"/> may be or-ed in.</summary>
[Flags]
public enum VirtioNetGsoType : byte
{
    /// <summary>VIRTIO_NET_HDR_GSO_NONE: a single packet.</summary>
    None = 0,

    /// <summary>VIRTIO_NET_HDR_GSO_TCPV4: a TCP/IPv4 super-segment to cut at gso_size.</summary>
    TcpV4 = 1,

    /// <summary>VIRTIO_NET_HDR_GSO_UDP: UFO (deprecated by Linux).</summary>
    Udp = 3,

    /// <summary>VIRTIO_NET_HDR_GSO_TCPV6: a TCP/IPv6 super-segment.</summary>
    TcpV6 = 4,

    /// <summary>VIRTIO_NET_HDR_GSO_ECN: the segment had CWR set; flag, or-ed with a type.</summary>
    Ecn = 0x80,
}
