using System.Net;
using Beemesh.Netstack.Forwarding;
using Beemesh.Netstack.Stack;

namespace Beemesh.Sidecar.Inbound;

/// <summary>
/// The production <see cref="IGuestConnector"/>: asks the stack for an in-process guest flow
/// (<see cref="NetworkStack.AttachGuestStream"/>): the stack opens TCP into the guest from the
/// caller's mesh address, and the returned <see cref="GuestFlowStream"/> carries its bytes with
/// no host socket in between. A refusal by the guest surfaces as a reset on the stream.
/// </summary>
public sealed class NetstackGuestConnector : IGuestConnector
{
    private readonly NetworkStack _stack;
    private int _nextSourcePort;

    /// <summary>Creates a connector on <paramref name="stack"/>.</summary>
    public NetstackGuestConnector(NetworkStack stack)
    {
        ArgumentNullException.ThrowIfNull(stack);
        _stack = stack;
    }

    /// <inheritdoc />
    public Task<Stream> ConnectAsync(IPAddress callerMeshAddress, int guestPort, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(callerMeshAddress);
        cancellationToken.ThrowIfCancellationRequested();

        // The caller's real source port is not carried over the tunnel: pick one from the
        // ephemeral range (RFC 6335 section 6) so concurrent flows from one caller stay distinct.
        int sourcePort = 49152 + ((Interlocked.Increment(ref _nextSourcePort) & 0x7fffffff) % 16384);
        GuestFlowStream stream = _stack.AttachGuestStream(callerMeshAddress, sourcePort, guestPort)
            ?? throw new IOException($"The network stack refused a guest connection to port {guestPort}.");
        // The splice reading it never blocks: the guest's bytes go into the tunnel from the stack's loop.
        stream.InlineReadCompletions = true;
        return Task.FromResult<Stream>(stream);
    }
}
