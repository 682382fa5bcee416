using Beemesh.Overlay;
using Beemesh.Overlay.Codec;

namespace Beemesh.Agent.Mesh;

/// <summary>Reads <see cref="OverlayCodec"/> frames from a stream, keeping the bytes past a frame for the next.</summary>
internal sealed class OverlayFrameReader(Stream stream)
{
    private byte[] _buffer = new byte[16 * 1024];
    private int _start;
    private int _end;

    /// <summary>The next frame; null at the end of the stream. Throws <see cref="InvalidDataException"/> for a malformed frame.</summary>
    public async Task<OverlayMessage?> ReadAsync(bool hello, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_end > _start)
            {
                ReadOnlySpan<byte> data = _buffer.AsSpan(_start, _end - _start);
                FrameStatus status;
                OverlayMessage? message = null;
                int consumed;
                OverlayCodecError error;
                if (hello)
                {
                    status = OverlayCodec.TryReadHello(data, out PeerAddress peer, out consumed, out error);
                    if (status == FrameStatus.Complete)
                    {
                        message = OverlayMessage.Hello(peer, OverlayNode.ProtocolVersion);
                    }
                }
                else
                {
                    status = OverlayCodec.TryReadFrame(data, out message, out consumed, out error);
                }

                if (status == FrameStatus.Malformed)
                {
                    throw new InvalidDataException($"malformed overlay frame ({error})");
                }

                if (status == FrameStatus.Complete)
                {
                    _start += consumed;
                    return message;
                }
            }

            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            if (_end == _buffer.Length)
            {
                if (_buffer.Length >= OverlayCodec.MaxFrameLength + 16)
                {
                    throw new InvalidDataException("overlay frame too long");
                }

                Array.Resize(ref _buffer, Math.Min(_buffer.Length * 2, OverlayCodec.MaxFrameLength + 16));
            }

            int read = await stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return null;
            }

            _end += read;
        }
    }
}
