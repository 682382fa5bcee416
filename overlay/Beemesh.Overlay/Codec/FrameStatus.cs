namespace Beemesh.Overlay.Codec;

/// <summary>Outcome of <see cref="OverlayCodec.TryReadFrame"/>.</summary>
public enum FrameStatus
{
    /// <summary>A whole frame was decoded.</summary>
    Complete,
    /// <summary>More bytes are needed.</summary>
    Incomplete,
    /// <summary>The frame is malformed; see the error. The link should be dropped.</summary>
    Malformed,
}
