using System.Buffers.Binary;

namespace Beemesh.State.Strong;

/// <summary>Reads little-endian fields from a span; throws <see cref="FormatException"/> when the data ends early.</summary>
internal ref struct SpanReader(ReadOnlySpan<byte> data)
{
    private ReadOnlySpan<byte> _rest = data;

    public readonly bool AtEnd => _rest.IsEmpty;

    public byte Byte() => Take(1)[0];

    public int Int32() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));

    public long Int64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));

    /// <summary>A 32-bit length, then that many bytes.</summary>
    public ReadOnlySpan<byte> Bytes()
    {
        int length = Int32();
        return length < 0 ? throw new FormatException("negative length") : Take(length);
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        if (_rest.Length < count)
        {
            throw new FormatException("the data ends inside a field");
        }

        ReadOnlySpan<byte> taken = _rest[..count];
        _rest = _rest[count..];
        return taken;
    }
}
