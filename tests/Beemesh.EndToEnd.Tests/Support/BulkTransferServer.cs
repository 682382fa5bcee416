using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// A one-connection TCP server on 127.0.0.1 for byte-exact bulk transfers. As a sink it reads to
/// end of stream, hashing (SHA-256) and counting; as a source it sends <c>N</c> bytes of
/// <see cref="PseudoRandomStream"/>, hashing what it sent, then closes.
/// </summary>
public sealed class BulkTransferServer : IDisposable
{
    private const int ChunkSize = 1 << 20;
    private readonly Socket _listener;

    private BulkTransferServer()
    {
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(1);
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
    }

    /// <summary>Where the server listens.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>The transfer; completes when the stream ended (or faults when it broke).</summary>
    public Task<TransferResult> Completion { get; private set; } = Task.FromResult(new TransferResult(0, "", TimeSpan.Zero));

    /// <summary>Starts a server that accepts one connection and hashes everything it receives.</summary>
    /// <param name="cancellation">Cancels the wait for the client and the transfer.</param>
    /// <param name="fullSpeed">When given, the sink reads at most <paramref name="throttledBytesPerSecond"/>
    /// until this task completes, so a transfer is sure to outlast something the test does meanwhile.</param>
    /// <param name="throttledBytesPerSecond">The read rate before <paramref name="fullSpeed"/> completes.</param>
    public static BulkTransferServer StartSink(CancellationToken cancellation, Task? fullSpeed = null, double throttledBytesPerSecond = 64e6)
    {
        var server = new BulkTransferServer();
        server.Completion = Task.Run(() => server.SinkAsync(cancellation, fullSpeed ?? Task.CompletedTask, throttledBytesPerSecond), cancellation);
        return server;
    }

    /// <summary>Starts a server that accepts one connection and sends it <paramref name="bytes"/> pseudo-random bytes.</summary>
    /// <param name="bytes">How many bytes to send.</param>
    /// <param name="cancellation">Cancels the wait for the client and the transfer.</param>
    public static BulkTransferServer StartSource(long bytes, CancellationToken cancellation)
    {
        var server = new BulkTransferServer();
        server.Completion = Task.Run(() => server.SourceAsync(bytes, cancellation), cancellation);
        return server;
    }

    /// <inheritdoc />
    public void Dispose() => _listener.Dispose();

    private async Task<TransferResult> SinkAsync(CancellationToken cancellation, Task fullSpeed, double throttledBytesPerSecond)
    {
        using Socket client = await _listener.AcceptAsync(cancellation).ConfigureAwait(false);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var clock = Stopwatch.StartNew();
        var buffer = new byte[ChunkSize];
        long total = 0;
        while (true)
        {
            int n = await client.ReceiveAsync(buffer, SocketFlags.None, cancellation).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            hash.AppendData(buffer, 0, n);
            total += n;
            if (!fullSpeed.IsCompleted)
            {
                var due = TimeSpan.FromSeconds(total / throttledBytesPerSecond) - clock.Elapsed;
                if (due > TimeSpan.Zero)
                {
                    await Task.WhenAny(Task.Delay(due, cancellation), fullSpeed).ConfigureAwait(false);
                }
            }
        }

        var elapsed = clock.Elapsed;
        client.Shutdown(SocketShutdown.Send);
        return new TransferResult(total, Convert.ToHexStringLower(hash.GetHashAndReset()), elapsed);
    }

    private async Task<TransferResult> SourceAsync(long bytes, CancellationToken cancellation)
    {
        using Socket client = await _listener.AcceptAsync(cancellation).ConfigureAwait(false);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var stream = new PseudoRandomStream();
        var clock = Stopwatch.StartNew();
        var buffer = new byte[ChunkSize];
        long sent = 0;
        while (sent < bytes)
        {
            stream.Fill(buffer);
            int n = (int)Math.Min(buffer.Length, bytes - sent);
            hash.AppendData(buffer, 0, n);
            for (int at = 0; at < n;)
            {
                at += await client.SendAsync(buffer.AsMemory(at, n - at), SocketFlags.None, cancellation).ConfigureAwait(false);
            }

            sent += n;
        }

        client.Shutdown(SocketShutdown.Send);

        // The transfer is over when the guest has read everything and closes its side.
        var rest = new byte[256];
        while (await client.ReceiveAsync(rest, SocketFlags.None, cancellation).ConfigureAwait(false) > 0)
        {
        }

        return new TransferResult(sent, Convert.ToHexStringLower(hash.GetHashAndReset()), clock.Elapsed);
    }
}
