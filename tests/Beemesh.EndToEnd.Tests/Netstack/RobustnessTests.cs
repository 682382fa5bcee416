using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Netstack;

/// <summary>
/// Hostile traffic from inside the guest while a transfer runs: the stack must drop and count it
/// and keep serving — the transfer stays byte-exact and new connections still work.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class RobustnessTests(ITestOutputHelper output)
{
    private const int Syns = 10_000;
    private const int JunkFrames = 20_000;

    // Well above the stack's working set with a transfer under way and its bounded flow tables
    // (the bench measures 132 MiB with 1,000 open connections), well below what keeping state
    // for every flooding SYN and every junk frame would take.
    private const long StackRssBound = 400L << 20;

    [SkippableFact]
    public async Task Syn_flood_and_malformed_frames_during_a_transfer_are_dropped_and_counted()
    {
        BeemeshEnvironment.RequireReady("python3", "openssl");
        long bytes = Math.Min(1L << 30, BeemeshEnvironment.ByteCount("BEEMESH_E2E_BYTES", 1L << 30));
        var timeout = TimeSpan.FromSeconds(120 + (bytes / 40e6));
        using var cts = new CancellationTokenSource(timeout);
        // The sink reads slowly until the flood is over, so the flood always meets a live transfer.
        var floodDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sink = BulkTransferServer.StartSink(cts.Token, floodDone.Task);
        await using var floodTarget = new TcpEchoServer();
        await using var echo = new TcpEchoServer();
        // Ports held bound but not listening: certainly closed, and no one else's service.
        var closed = new List<Socket>();
        try
        {
            for (int i = 0; i < 32; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                closed.Add(s);
            }

            string closedPorts = string.Join(',', closed.Select(s => ((IPEndPoint)s.LocalEndPoint!).Port));
            using var files = new GuestFiles();
            string sender = files.Write("bulk_send.py", GuestPrograms.BulkSend);
            string hostile = files.Write("hostile.py", HostileTraffic.Program);
            string client = files.Write("tcp_client.py", GuestPrograms.TcpClient);
            string script = $"""
                openssl enc -aes-128-ctr -K {PseudoRandomStream.KeyHex} -iv 00000000000000000000000000000000 -nosalt -in /dev/zero 2>/dev/null | head -c {bytes} | python3 {sender} 10.0.2.2 {sink.EndPoint.Port} &
                transfer=$!
                sleep 1
                python3 {hostile} {closedPorts} {floodTarget.EndPoint.Port} {Syns} {JunkFrames}
                flood=$?
                kill -0 $transfer 2>/dev/null && echo 'flood ended while the transfer ran'
                wait $transfer
                sent=$?
                [ $flood = 0 ] || exit 20
                [ $sent = 0 ] || exit 21
                python3 {client} 10.0.2.2 {echo.EndPoint.Port} 'still alive'
                """;

            await using var run = BeemeshRun.Start(["--debug"], script);
            bool flooded = await run.WaitForLineAsync("hostile-done", timeout);
            long peakRss = PeakRssBytes(run.ProcessId); // the stack runs in beemesh run's own process
            floodDone.TrySetResult();
            var result = await run.WaitAsync(timeout);

            output.WriteLine(result.ToString());
            output.WriteLine(result.CounterSummary());
            Assert.True(flooded, "the hostile traffic never finished");
            output.WriteLine($"stack peak RSS through the flood: {peakRss / (1 << 20)} MiB");
            Assert.InRange(peakRss, 1, StackRssBound);
            Assert.Equal(0, result.ExitCode);
            Assert.Contains("flood ended while the transfer ran\n", result.Stdout, StringComparison.Ordinal);
            Assert.Contains($"hostile-done syn={Syns + (Syns / 2)} junk={JunkFrames}", result.Stdout, StringComparison.Ordinal);
            var received = await sink.Completion.WaitAsync(TimeSpan.FromSeconds(30));
            output.WriteLine($"transfer under attack: {received}");
            var sent = Regex.Match(result.Stdout, @"sent (\d+) ([0-9a-f]{64})");
            Assert.True(sent.Success, result.ToString());
            Assert.Equal(bytes, received.Bytes);
            Assert.Equal(sent.Groups[2].Value, received.Sha256);
            Assert.Contains("reply:still alive\n", result.Stdout, StringComparison.Ordinal);
            Assert.True(result.Counter("malformed_frames_total") > 0, result.CounterSummary());
            Assert.True(result.Counter("bad_checksums_total") > 0, result.CounterSummary());
            Assert.True(result.Counter("unsupported_frames_total") > 0, result.CounterSummary());
            // The hostile first fragments carry 12 bytes with MF set: not a multiple of 8 (RFC 791), so the
            // reassembler drops each as malformed rather than holding it.
            Assert.True(result.Counter("ipv4_fragments_total") > 0, result.CounterSummary());
            Assert.Equal(result.Counter("ipv4_fragments_total"), result.Counter("ipv4_reassembly_malformed_total"));
            Assert.True(result.Counter("tcp_connect_failures_total") + result.Counter("tcp_refused_limit_total") > 0, result.CounterSummary());
        }
        finally
        {
            foreach (var s in closed)
            {
                s.Dispose();
            }
        }
    }

    /// <summary>VmHWM of process <paramref name="pid"/> in bytes (0 when it is gone).</summary>
    private static long PeakRssBytes(int pid)
    {
        try
        {
            string? line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
