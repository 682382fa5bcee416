namespace Beemesh.Overlay.Records;

/// <summary>Checks a received record's signature and its signer's standing.</summary>
public interface IRecordVerifier
{
    /// <summary>Null when <paramref name="record"/> is signed by its origin with a valid, unrevoked key of the trust domain; else why not.</summary>
    RecordRefusal? Verify(OverlayRecord record);
}
