namespace Beemesh.Netstack.Stack;

/// <summary>IPv4 reassembly counters (written by the loop thread only; fields so they can be passed by reference).</summary>
public sealed class ReassemblyCounters
{
    /// <summary>Fragments received.</summary>
    public long Fragments;

    /// <summary>Datagrams put back together.</summary>
    public long Reassembled;

    /// <summary>Incomplete datagrams dropped when their time ran out.</summary>
    public long Timeouts;

    /// <summary>Fragments that overlapped another differently, or disagreed on the end (the datagram is dropped).</summary>
    public long Overlaps;

    /// <summary>Exact repeats of a fragment already held, ignored.</summary>
    public long Duplicates;

    /// <summary>Fragments or datagrams dropped for a memory or piece-count limit.</summary>
    public long LimitDrops;

    /// <summary>Fragments with an impossible length or offset.</summary>
    public long Malformed;
}
