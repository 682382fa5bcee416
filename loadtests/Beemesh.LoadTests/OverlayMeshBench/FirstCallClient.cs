using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Beemesh.LoadTests.MeshBench;

namespace Beemesh.LoadTests.OverlayMeshBench;

/// <summary>
/// Calls HOST:PORT until one call succeeds: resolve the name (again on every try, so a name that
/// did not exist a moment ago is found as soon as the resolver knows it), connect, send 16 bytes,
/// read the 16-byte echo. Prints <see cref="ProbingLine"/> before the first try and
/// <see cref="OkLine"/> after the first success, each on its own line, flushed at once: the harness
/// times the gap between a server's start and that line. Each time the reason a try failed changes,
/// a <see cref="FailLine"/> line says when and why, so a slow first call can be explained.
/// </summary>
public static class FirstCallClient
{
    /// <summary>Printed once the client is about to make its first try.</summary>
    public const string ProbingLine = "first-call probing";

    /// <summary>Printed (with the address) the first time the name resolves.</summary>
    public const string ResolvedLine = "first-call resolved";

    /// <summary>Printed (followed by the try count) when a call succeeded.</summary>
    public const string OkLine = "first-call ok";

    /// <summary>Printed (with the try, the time and the reason) when a try fails for another reason than the one before.</summary>
    public const string FailLine = "first-call failing";

    /// <summary>Pause between failed tries.</summary>
    public static readonly TimeSpan RetryInterval = TimeSpan.FromMilliseconds(10);

    /// <summary>Limit of one try (resolve, connect and echo).</summary>
    public static readonly TimeSpan TryTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Tries until one succeeds (exit 0) or <paramref name="limit"/> passes (exit 1).</summary>
    public static async Task<int> RunAsync(string host, int port, TimeSpan limit, TextWriter output, CancellationToken cancellationToken)
    {
        output.WriteLine($"{ProbingLine} {host}:{port}");
        output.Flush();
        var clock = Stopwatch.StartNew();
        string lastError = "no try";
        string reported = lastError;
        bool resolved = false;
        int tries = 0;
        byte[] request = new byte[RateClient.MessageBytes];
        byte[] response = new byte[RateClient.MessageBytes];
        while (clock.Elapsed < limit)
        {
            tries++;
            TimeSpan tryStart = clock.Elapsed;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TryTimeout);
            try
            {
                IPEndPoint endpoint = await MeshEndpoint.ResolveAsync(host, port, timeout.Token).ConfigureAwait(false);
                if (!resolved)
                {
                    resolved = true;
                    output.WriteLine($"{ResolvedLine} {host} -> {endpoint.Address} at try {tries}, {clock.Elapsed.TotalMilliseconds:0} ms");
                    output.Flush();
                }

                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(endpoint, timeout.Token).ConfigureAwait(false);
                await socket.SendAsync(request, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                int got = 0;
                while (got < response.Length)
                {
                    int read = await socket.ReceiveAsync(response.AsMemory(got), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                    if (read == 0)
                    {
                        break;
                    }

                    got += read;
                }

                if (got == response.Length)
                {
                    output.WriteLine($"{OkLine} after {tries} tries, {clock.Elapsed.TotalMilliseconds:0} ms");
                    output.Flush();
                    return 0;
                }

                lastError = $"closed after {got} of {response.Length} echo bytes";
            }
            catch (SocketException ex)
            {
                lastError = ex.SocketErrorCode.ToString();
            }
            catch (InvalidOperationException ex)
            {
                lastError = ex.Message;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                lastError = $"no answer within {TryTimeout.TotalSeconds:0} s";
            }

            if (lastError != reported)
            {
                output.WriteLine($"{FailLine} from try {tries} (started at {tryStart.TotalMilliseconds:0} ms, failed at {clock.Elapsed.TotalMilliseconds:0} ms): {lastError}");
                output.Flush();
                reported = lastError;
            }

            await Task.Delay(RetryInterval, cancellationToken).ConfigureAwait(false);
        }

        output.WriteLine($"first-call gave up after {tries} tries in {limit.TotalSeconds:0} s: {lastError}");
        output.Flush();
        return 1;
    }
}
