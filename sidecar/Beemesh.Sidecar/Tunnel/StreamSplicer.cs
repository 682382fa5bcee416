using System.Buffers;
using System.Net.Sockets;
using Beemesh.Netstack.Forwarding;

namespace Beemesh.Sidecar.Tunnel;

/// <summary>
/// Copies bytes both ways between two streams until both directions ended. Half-close aware: the
/// end of one direction is passed on as a write shutdown of the other side only, so a request
/// that ends with a FIN still gets its whole response. Buffers are rented per direction and
/// returned when that direction ends.
/// </summary>
public static class StreamSplicer
{
    // 64 KiB: a loopback socket hands over up to that much per read, so a bulk flow costs a
    // quarter of the reads, writes and HTTP/2 write calls of 16 KiB copies. Pooled, one per direction.
    private const int BufferSize = 64 * 1024;

    /// <summary>
    /// Splices <paramref name="a"/> and <paramref name="b"/>. <paramref name="shutdownA"/> ends
    /// writing to <paramref name="a"/> (a FIN or END_STREAM), likewise <paramref name="shutdownB"/>.
    /// <paramref name="counted"/> receives every chunk's size with true for a-to-b. Throws as soon as
    /// either direction fails, without waiting for the other (which may be blocked in a read that
    /// only ends when the caller aborts both streams, as it must then do).
    /// </summary>
    public static async Task SpliceAsync(
        Stream a, Func<ValueTask> shutdownA, Stream b, Func<ValueTask> shutdownB, Action<bool, int>? counted, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        Task aToB = CopyAsync(a, b, shutdownB, counted, true, cancellationToken);
        Task bToA = CopyAsync(b, a, shutdownA, counted, false, cancellationToken);
        Task first = await Task.WhenAny(aToB, bToA).ConfigureAwait(false);
        Task second = first == aToB ? bToA : aToB;
        // The other direction ends on its own once the caller resets both streams; observe its fault.
        _ = second.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        await first.ConfigureAwait(false);
        await second.ConfigureAwait(false);
    }

    /// <summary>Ends writing to <paramref name="stream"/>: a FIN for a socket or guest flow stream, nothing otherwise.</summary>
    public static ValueTask ShutdownWrite(Stream stream)
    {
        if (stream is GuestFlowStream flow)
        {
            flow.ShutdownWrite();
        }
        else if (stream is NetworkStream network)
        {
            try
            {
                network.Socket.Shutdown(SocketShutdown.Send);
            }
            catch (ObjectDisposedException)
            {
            }
            catch (SocketException)
            {
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Closes <paramref name="stream"/>, with an RST when it is a socket or guest flow stream.</summary>
    public static void Reset(Stream stream)
    {
        if (stream is GuestFlowStream flow)
        {
            flow.Abort();
        }
        else if (stream is NetworkStream network)
        {
            try
            {
                // Close(0) is the abortive close (SO_LINGER 0): the peer gets an RST, not the FIN a
                // plain dispose sends first to unblock reads still pending on the socket.
                network.Socket.Close(0);
            }
            catch (ObjectDisposedException)
            {
            }
            catch (SocketException)
            {
            }
        }

        stream.Dispose();
    }

    private static async Task CopyAsync(Stream from, Stream to, Func<ValueTask> shutdownTo, Action<bool, int>? counted, bool forward, CancellationToken cancellationToken)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        Socket? source = (from as NetworkStream)?.Socket;
        var flowSource = from as GuestFlowStream;
        bool flushes = to is not (NetworkStream or GuestFlowStream); // their writes are handed over by the write itself
        try
        {
            while (true)
            {
                int read = await from.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);

                // A small write must leave at once (a request waits for it), but while the source
                // already holds more bytes the next chunk follows right away: skipping the flush
                // then lets the tunnel connection put both chunks in one TLS write.
                if (flushes && !(flowSource is not null ? flowSource.ReadableBytes > 0 : HasMore(source)))
                {
                    await to.FlushAsync(cancellationToken).ConfigureAwait(false);
                }

                counted?.Invoke(forward, read);
            }

            await shutdownTo().ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>True when <paramref name="source"/> is a socket with bytes already received.</summary>
    private static bool HasMore(Socket? source)
    {
        if (source is null)
        {
            return false;
        }

        try
        {
            return source.Available > 0;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false; // the next read reports the failure
        }
    }
}
