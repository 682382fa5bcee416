using System.Net;

namespace Beemesh.Sidecar.State;

/// <summary>
/// Where the state API listens: an address to bind (tests, <c>beemesh sidecar</c>), or a listening
/// socket made elsewhere, such as inside the workload's network namespace by the native helper.
/// </summary>
public sealed class StateApiListener
{
    private StateApiListener(IPEndPoint? endPoint, ulong? handle)
    {
        EndPoint = endPoint;
        Handle = handle;
    }

    /// <summary>The address to bind, or null for <see cref="Handle"/>.</summary>
    public IPEndPoint? EndPoint { get; }

    /// <summary>The fd of a bound, listening TCP socket; the server takes it over and closes it.</summary>
    public ulong? Handle { get; }

    /// <summary>Binds <paramref name="endPoint"/> (port 0 for any free port).</summary>
    public static StateApiListener Bind(IPEndPoint endPoint) => new(endPoint ?? throw new ArgumentNullException(nameof(endPoint)), null);

    /// <summary>Serves on an already listening socket's fd.</summary>
    public static StateApiListener FromHandle(ulong fd) => new(null, fd);
}
