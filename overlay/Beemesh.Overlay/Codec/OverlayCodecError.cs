namespace Beemesh.Overlay.Codec;

/// <summary>Why a frame could not be decoded. The host drops the link and counts the reason.</summary>
public enum OverlayCodecError
{
    /// <summary>No error.</summary>
    None,
    /// <summary>The length prefix exceeds <see cref="OverlayCodec.MaxFrameLength"/> or is zero.</summary>
    BadLength,
    /// <summary>The type byte names no message type.</summary>
    UnknownType,
    /// <summary>A field runs past the end of its frame.</summary>
    Truncated,
    /// <summary>Bytes left over after the message.</summary>
    TrailingBytes,
    /// <summary>A count, key, payload or signature beyond its bound.</summary>
    FieldTooLarge,
    /// <summary>A field holds a value outside its range (address family, record kind, flag, key text).</summary>
    BadField,
    /// <summary>The first frame is not a Hello.</summary>
    HelloExpected,
    /// <summary>The Hello names a protocol version this node does not speak.</summary>
    UnsupportedVersion,
}
