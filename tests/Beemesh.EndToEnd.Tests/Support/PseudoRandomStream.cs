using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// A deterministic pseudo-random byte stream: AES-128 in counter mode over zeros, the same bytes
/// <c>openssl enc -aes-128-ctr -K KEY -iv 0 -nosalt -in /dev/zero</c> writes (that is how the
/// guest makes the same kind of stream). AES-NI makes it several GB/s, so it never limits a transfer.
/// </summary>
public sealed class PseudoRandomStream : IDisposable
{
    /// <summary>The fixed key, in the hex form openssl's <c>-K</c> takes.</summary>
    public const string KeyHex = "000102030405060708090a0b0c0d0e0f";

    private readonly Aes _aes;
    private byte[] _counters = [];
    private UInt128 _counter;

    /// <summary>Starts the stream at byte 0.</summary>
    public PseudoRandomStream()
    {
        _aes = Aes.Create();
        _aes.Key = Convert.FromHexString(KeyHex);
    }

    /// <summary>Fills <paramref name="buffer"/> with the next bytes; its length must be a multiple of 16.</summary>
    /// <param name="buffer">Where the bytes go.</param>
    public void Fill(Span<byte> buffer)
    {
        if (buffer.Length % 16 != 0)
        {
            throw new ArgumentException("length must be a multiple of the AES block", nameof(buffer));
        }

        if (_counters.Length < buffer.Length)
        {
            _counters = new byte[buffer.Length];
        }

        var counters = _counters.AsSpan(0, buffer.Length);
        for (int i = 0; i < counters.Length; i += 16)
        {
            BinaryPrimitives.WriteUInt128BigEndian(counters[i..], _counter++);
        }

        _aes.EncryptEcb(counters, buffer, PaddingMode.None);
    }

    /// <inheritdoc />
    public void Dispose() => _aes.Dispose();
}
