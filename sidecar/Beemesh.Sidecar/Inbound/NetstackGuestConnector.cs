using System.Net;
using System.Net.Sockets;
using Beemesh.Netstack.Stack;

namespace Beemesh.Sidecar.Inbound;

/// <summary>
/// The production <see cref="IGuestConnector"/>: makes a connected loopback TCP socket pair, hands
/// one end to <see cref="NetworkStack.AttachGuestConnection"/> (the stack opens TCP into the guest
/// from the caller's mesh address and splices it onto that end) and returns the other end.
/// A loopback pair rather than socketpair(2) keeps the code free of P/Invoke; it stays on the host.
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
    public async Task<Stream> ConnectAsync(IPAddress callerMeshAddress, int guestPort, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(callerMeshAddress);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var ours = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Socket theirs;
        try
        {
            Task<Socket> accept = listener.AcceptAsync(cancellationToken).AsTask();
            await ours.ConnectAsync(listener.LocalEndPoint!, cancellationToken).ConfigureAwait(false);
            theirs = await accept.ConfigureAwait(false);
        }
        catch
        {
            ours.Dispose();
            throw;
        }

        // The caller's real source port is not carried over the tunnel: pick one from the
        // ephemeral range (RFC 6335 section 6) so concurrent flows from one caller stay distinct.
        int sourcePort = 49152 + ((Interlocked.Increment(ref _nextSourcePort) & 0x7fffffff) % 16384);
        int fd = (int)theirs.Handle;
        // Ownership of the fd moves to the stack: stop the Socket from closing it.
        theirs.SafeHandle.SetHandleAsInvalid();
        if (!_stack.AttachGuestConnection(fd, callerMeshAddress, sourcePort, guestPort))
        {
            ours.Dispose();
            throw new IOException($"The network stack refused a guest connection to port {guestPort}.");
        }

        return new NetworkStream(ours, ownsSocket: true);
    }
}
