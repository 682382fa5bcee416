namespace Beemesh.Overlay.Records;

/// <summary>Signs records this node originates (with its node SVID key in the agent).</summary>
public interface IRecordSigner
{
    /// <summary>The signature over <see cref="OverlayRecord.SignedBytes"/> of <paramref name="record"/>.</summary>
    byte[] Sign(OverlayRecord record);
}
