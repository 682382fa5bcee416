namespace Beemesh.Netstack.Wire;

/// <summary>The fields of <c>struct virtio_net_hdr</c>; <c>default</c> is "plain frame, checksum complete".</summary>
/// <param name="Flags">flags.</param>
/// <param name="GsoType">gso_type.</param>
/// <param name="HeaderLength">hdr_len.</param>
/// <param name="GsoSize">gso_size.</param>
/// <param name="ChecksumStart">csum_start.</param>
/// <param name="ChecksumOffset">csum_offset.</param>
public readonly record struct VirtioNetHeaderRepr(
    VirtioNetHeaderFlags Flags, VirtioNetGsoType GsoType, ushort HeaderLength, ushort GsoSize, ushort ChecksumStart, ushort ChecksumOffset)
{
    /// <summary>Bytes <see cref="Emit"/> writes.</summary>
    public int BufferLength => VirtioNetHeader.Length;

    /// <summary>True when the frame is a super-segment to be cut at <see cref="GsoSize"/>.</summary>
    public bool IsGso => (GsoType & ~VirtioNetGsoType.Ecn) != VirtioNetGsoType.None;

    /// <summary>
    /// Reads the header; fails on unknown flag bits, an unknown GSO type, a GSO frame with gso_size 0, or
    /// NEEDS_CSUM without room for the checksum inside the frame.
    /// </summary>
    public static bool TryParse(VirtioNetHeader header, out VirtioNetHeaderRepr repr)
    {
        repr = default;
        VirtioNetHeaderFlags flags = header.Flags;
        VirtioNetGsoType gso = header.GsoType;
        VirtioNetGsoType baseType = gso & ~VirtioNetGsoType.Ecn;
        if ((flags & ~(VirtioNetHeaderFlags.NeedsChecksum | VirtioNetHeaderFlags.DataValid)) != 0
            || baseType is not (VirtioNetGsoType.None or VirtioNetGsoType.TcpV4 or VirtioNetGsoType.Udp or VirtioNetGsoType.TcpV6)
            || (baseType != VirtioNetGsoType.None && header.GsoSize == 0))
        {
            return false;
        }

        if ((flags & VirtioNetHeaderFlags.NeedsChecksum) != 0
            && header.ChecksumStart + header.ChecksumOffset + 2 > header.Payload.Length)
        {
            return false;
        }

        repr = new VirtioNetHeaderRepr(flags, gso, header.HeaderLength, header.GsoSize, header.ChecksumStart, header.ChecksumOffset);
        return true;
    }

    /// <summary>Writes the 10-byte header to the start of <paramref name="buffer"/>.</summary>
    public void Emit(Span<byte> buffer)
    {
        if (!VirtioNetHeader.TryCreate(buffer, out VirtioNetHeader header))
        {
            WireThrowHelper.BufferTooSmall("virtio_net_hdr", VirtioNetHeader.Length, buffer.Length);
        }

        header.Flags = Flags;
        header.GsoType = GsoType;
        header.HeaderLength = HeaderLength;
        header.GsoSize = GsoSize;
        header.ChecksumStart = ChecksumStart;
        header.ChecksumOffset = ChecksumOffset;
    }
}
