using System.Net;
using System.Net.Sockets;
using Beemesh.LoadTests.Scenarios;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>
/// Open-loop request/response latency: requests are due at a fixed rate, each sends one 16-byte
/// request and reads the 16-byte echo, all over ONE kept connection. A request that falls due
/// while the previous one is still in flight waits for it, and that wait counts: its latency runs
/// from the instant it was due, not from when it was sent (no coordinated omission).
/// </summary>
/// <remarks>
/// One dedicated thread does everything with blocking calls: it sleeps until the next request is
/// due (an absolute CLOCK_MONOTONIC deadline, 1 ns timer slack), writes, and reads the echo. Each
/// request therefore costs the client one wake-up for its deadline and one for the echo, never a
/// hand-off between pool threads; on a machine whose cores are busy with other work, a client
/// built on async continuations measured mostly its own queueing (loopback p50 of 479 ms at
/// 1,000 req/s beside two busy loops).
/// </remarks>
public static class RateClient
{
    /// <summary>Name of the step that times one request/response.</summary>
    public const string StepName = "request";

    /// <summary>Bytes per request (and per response).</summary>
    public const int MessageBytes = 16;

    /// <summary>How the latency is measured, for the benchmark reports.</summary>
    public static readonly string Method =
        $"Open loop (`beemesh-loadtests rate-client`): requests are due at a fixed rate; each writes {MessageBytes} bytes and reads the {MessageBytes}-byte echo over ONE kept " +
        "connection, established before measuring, so connection setup is not in these numbers. A request due while the previous one is in flight waits, and the wait " +
        "counts (its latency runs from the instant it was due); otherwise latency runs from the send, so a late wake-up of the client's own thread is not counted. The client is one thread with blocking calls that sleeps until each deadline (clock_nanosleep, 1 ns timer " +
        "slack), and every echo server serves each connection on a thread of its own, so neither queues work between pool threads. ";

    /// <summary>Requests before measuring, at the same rate, not recorded.</summary>
    public static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(1);

    /// <summary>Sends <paramref name="rate"/> requests per second for <paramref name="duration"/> after a 1 s warm-up.</summary>
    public static ScenarioStats Run(string host, int port, TimeSpan duration, int rate, CancellationToken cancellationToken)
    {
        IPEndPoint endpoint = MeshEndpoint.ResolveAsync(host, port, cancellationToken).GetAwaiter().GetResult();
        using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.ConnectAsync(endpoint, cancellationToken).AsTask().GetAwaiter().GetResult();
        return Measure(socket, WarmUp, duration, rate, cancellationToken);
    }

    /// <summary>
    /// Paces requests over a connected <paramref name="socket"/> on a thread of its own and returns
    /// the statistics of those due after <paramref name="warmUp"/>: exactly
    /// <paramref name="rate"/> × <paramref name="duration"/> of them unless the connection fails or
    /// <paramref name="cancellationToken"/> fires.
    /// </summary>
    public static ScenarioStats Measure(Socket socket, TimeSpan warmUp, TimeSpan duration, int rate, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentOutOfRangeException.ThrowIfLessThan(rate, 1);
        ScenarioStats? stats = null;
        Exception? failure = null;
        using CancellationTokenRegistration stop = cancellationToken.Register(socket.Dispose);
        var thread = new Thread(() =>
        {
            try
            {
                stats = Pace(socket, warmUp, duration, rate, cancellationToken);
            }
            catch (Exception ex)
            {
                failure = ex;
            }
        })
        {
            IsBackground = true,
            Name = "rate-client",
        };
        thread.Start();
        thread.Join();
        cancellationToken.ThrowIfCancellationRequested();
        return failure is null ? stats! : throw new InvalidOperationException($"rate client: {failure.Message}", failure);
    }

    private static ScenarioStats Pace(Socket socket, TimeSpan warmUp, TimeSpan duration, int rate, CancellationToken cancellationToken)
    {
        PacedClock.TightenTimerSlack();
        byte[] request = new byte[MessageBytes];
        byte[] response = new byte[MessageBytes];
        long periodNs = Math.Max(1, 1_000_000_000L / rate);
        long begin = PacedClock.NowNs() + periodNs;
        long measureFrom = begin + (warmUp.Ticks * 100L);
        long measureTo = measureFrom + (duration.Ticks * 100L);
        var latencyNs = new LatencyHistogram();
        long ok = 0;
        string? firstFailure = null;
        for (long n = 0; !cancellationToken.IsCancellationRequested; n++)
        {
            long due = begin + (n * periodNs);
            if (due >= measureTo)
            {
                break;
            }

            // Already due (the previous request ran past this one's instant): the wait counts,
            // from the instant it was due. Else sleep, and time from the send: how late the
            // client's own thread woke is not the path's latency.
            long start = PacedClock.NowNs();
            if (start >= due)
            {
                start = due;
            }
            else
            {
                PacedClock.SleepUntil(due);
                start = PacedClock.NowNs();
            }

            string? error = RoundTrip(socket, request, response);
            long done = PacedClock.NowNs();
            if (due < measureFrom)
            {
                if (error is not null)
                {
                    throw new IOException($"failed during warm-up: {error}");
                }

                continue;
            }

            latencyNs.Record(done - start);
            if (error is not null)
            {
                firstFailure = error;
                break;
            }

            ok++;
        }

        var measured = TimeSpan.FromTicks((measureTo - measureFrom) / 100L);
        long count = latencyNs.Count;
        var step = new StepStats(
            StepName,
            count,
            ok,
            count - ok,
            count / measured.TotalSeconds,
            ok * 2 * MessageBytes,
            LatencyStats.From(latencyNs),
            firstFailure);
        return new ScenarioStats("rate", measured, step with { Name = "rate" }, [step]);
    }

    /// <summary>One request and its whole echo; the reason on failure, else null.</summary>
    private static string? RoundTrip(Socket socket, byte[] request, byte[] response)
    {
        try
        {
            if (socket.Send(request) != request.Length)
            {
                return "short write";
            }

            int got = 0;
            while (got < response.Length)
            {
                int read = socket.Receive(response, got, response.Length - got, SocketFlags.None);
                if (read == 0)
                {
                    return "connection closed";
                }

                got += read;
            }

            return null;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return $"{ex.GetType().Name}: {ex.Message}";
        }
    }
}
