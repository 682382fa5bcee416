namespace Beemesh.Netstack.Stack;

/// <summary>What <see cref="Ipv4Reassembler.Add"/> did with a fragment.</summary>
internal enum ReassemblyOutcome
{
    /// <summary>Stored; the datagram is not complete yet.</summary>
    Pending,

    /// <summary>This fragment completed the datagram, which was returned.</summary>
    Complete,

    /// <summary>Dropped (malformed, duplicate, overlapping, over a limit); counted.</summary>
    Dropped,
}
