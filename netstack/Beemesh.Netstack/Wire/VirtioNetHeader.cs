using System.Buffers.Binary;

namespace Beemesh.Netstack.Wire;

/// <summary>
/// A zero-copy view of the 10-byte <c>struct virtio_net_hdr</c> that precedes every frame on a tap opened with
/// IFF_VNET_HDR (the default TUNSETVNETHDRSZ). Multi-byte fields are little-endian: a non-legacy vnet header uses
/// the host's byte order unless TUNSETVNETBE/TUNSETVNETLE say otherwise, and Beemesh runs on little-endian hosts
/// (x86-64, arm64), so little-endian is what the kernel reads and writes there.
/// <see cref="TryCreate"/> checks the length once; after that no accessor can read out of range.
/// </summary>
public readonly ref struct VirtioNetHeader
{
    /// <summary>Size of <c>struct virtio_net_hdr</c>.</summary>
    public const int Length = 10;

    private readonly Span<byte> _buffer;

    private VirtioNetHeader(Span<byte> buffer) => _buffer = buffer;

    /// <summary>Wraps <paramref name="buffer"/> (header followed by the Ethernet frame) when it holds at least 10 bytes.</summary>
    public static bool TryCreate(Span<byte> buffer, out VirtioNetHeader header)
    {
        header = buffer.Length < Length ? default : new VirtioNetHeader(buffer);
        return buffer.Length >= Length;
    }

    /// <summary>Header and frame.</summary>
    public Span<byte> Buffer => _buffer;

    /// <summary>flags.</summary>
    public VirtioNetHeaderFlags Flags
    {
        get => (VirtioNetHeaderFlags)_buffer[Field.Flags];
        set => _buffer[Field.Flags] = (byte)value;
    }

    /// <summary>gso_type.</summary>
    public VirtioNetGsoType GsoType
    {
        get => (VirtioNetGsoType)_buffer[Field.GsoType];
        set => _buffer[Field.GsoType] = (byte)value;
    }

    /// <summary>hdr_len: bytes of Ethernet + IP + transport headers (a hint; Linux does not trust it).</summary>
    public ushort HeaderLength
    {
        get => BinaryPrimitives.ReadUInt16LittleEndian(_buffer.Slice(Field.HeaderLength, Field.HeaderLengthSize));
        set => BinaryPrimitives.WriteUInt16LittleEndian(_buffer.Slice(Field.HeaderLength, Field.HeaderLengthSize), value);
    }

    /// <summary>gso_size: payload bytes per segment (the MSS) when <see cref="GsoType"/> is not None.</summary>
    public ushort GsoSize
    {
        get => BinaryPrimitives.ReadUInt16LittleEndian(_buffer.Slice(Field.GsoSize, Field.GsoSizeSize));
        set => BinaryPrimitives.WriteUInt16LittleEndian(_buffer.Slice(Field.GsoSize, Field.GsoSizeSize), value);
    }

    /// <summary>csum_start: offset in the frame where checksumming starts (the transport header).</summary>
    public ushort ChecksumStart
    {
        get => BinaryPrimitives.ReadUInt16LittleEndian(_buffer.Slice(Field.ChecksumStart, Field.ChecksumStartSize));
        set => BinaryPrimitives.WriteUInt16LittleEndian(_buffer.Slice(Field.ChecksumStart, Field.ChecksumStartSize), value);
    }

    /// <summary>csum_offset: where, after <see cref="ChecksumStart"/>, the checksum is stored (16 for TCP, 6 for UDP).</summary>
    public ushort ChecksumOffset
    {
        get => BinaryPrimitives.ReadUInt16LittleEndian(_buffer.Slice(Field.ChecksumOffset, Field.ChecksumOffsetSize));
        set => BinaryPrimitives.WriteUInt16LittleEndian(_buffer.Slice(Field.ChecksumOffset, Field.ChecksumOffsetSize), value);
    }

    /// <summary>The Ethernet frame after the header.</summary>
    public Span<byte> Payload => _buffer[Length..];

    private static class Field
    {
        public const int Flags = 0;
        public const int GsoType = 1;
        public const int HeaderLength = 2;
        public const int HeaderLengthSize = 2;
        public const int GsoSize = 4;
        public const int GsoSizeSize = 2;
        public const int ChecksumStart = 6;
        public const int ChecksumStartSize = 2;
        public const int ChecksumOffset = 8;
        public const int ChecksumOffsetSize = 2;
    }
}
