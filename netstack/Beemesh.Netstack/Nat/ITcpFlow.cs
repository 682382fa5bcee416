using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Tcp;

namespace Beemesh.Netstack.Nat;

/// <summary>
/// A guest TCP connection the stack routes segments to: spliced onto a host socket
/// (<see cref="TcpFlow"/>) or onto an in-process stream (<see cref="AttachedTcpFlow"/>). Loop thread only.
/// </summary>
internal interface ITcpFlow : IEventHandler, IDisposable
{
    /// <summary>The flow as the guest sees it.</summary>
    FlowKey Key { get; }

    /// <summary>The guest-side state, or Closed before the connection exists.</summary>
    TcpState State { get; }

    /// <summary>True once the connection can no longer carry data (TIME-WAIT or closed).</summary>
    bool IsFinished { get; }

    /// <summary>A segment from the guest for this flow.</summary>
    void OnSegment(in TcpSegmentInfo segment, ReadOnlySpan<byte> payload);

    /// <summary>End of a batch: let the connection send data, ACKs and window updates.</summary>
    void Flush();
}
