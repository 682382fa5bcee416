using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Netstack;

/// <summary>
/// A guest upload to a host server that, after a fast start, reads 16 KiB at a time with a pause after each read,
/// like a proxy whose own output is back-pressured: the flow's host socket stays full for the
/// whole transfer, and the stack must keep every promise its window made (no refused bytes
/// inside the window, a window update whenever the socket drains) until the last byte.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class SlowHostReaderTests(ITestOutputHelper output)
{
    private const long Bytes = 64L << 20;

    // Read at full speed first, so the kernel grows the flow's socket buffers (and the window
    // the stack derives from them) before the reader slows down.
    private const long FastBytes = 16L << 20;

    /// <summary>Generous: the reader alone needs about 5 s; a stall fails instead of hanging.</summary>
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    [SkippableFact]
    public async Task Guest_upload_to_slow_host_reader_arrives_byte_exact()
    {
        BeemeshEnvironment.RequireReady("python3", "openssl");
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        using var cts = new CancellationTokenSource(Timeout);
        var sink = Task.Run(() => SlowSink(listener, cts.Token), cts.Token);
        using var files = new GuestFiles();
        string sender = files.Write("bulk_send.py", GuestPrograms.BulkSend);
        string script = $"openssl enc -aes-128-ctr -K {PseudoRandomStream.KeyHex} -iv 00000000000000000000000000000000 -nosalt -in /dev/zero 2>/dev/null"
            + $" | head -c {Bytes} | python3 {sender} 10.0.2.2 {port}";

        var result = await BeemeshRun.RunAsync(["--debug"], script, Timeout);

        output.WriteLine(result.ToString());
        Assert.Equal(0, result.ExitCode);
        var (count, sha256) = await sink.WaitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine($"guest -> slow host reader: {count} bytes");
        output.WriteLine(result.CounterSummary());
        var sent = Regex.Match(result.Stdout, @"sent (\d+) ([0-9a-f]{64})");
        Assert.True(sent.Success, result.ToString());
        Assert.Equal(Bytes, count);
        Assert.Equal(sent.Groups[2].Value, sha256);
    }

    private static (long Count, string Sha256) SlowSink(Socket listener, CancellationToken cancellation)
    {
        using var registration = cancellation.Register(listener.Dispose);
        using Socket client = listener.Accept();
        using var closeOnCancel = cancellation.Register(client.Dispose);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[16 * 1024];
        long total = 0;
        while (true)
        {
            int n = client.Receive(buffer);
            if (n == 0)
            {
                break;
            }

            hash.AppendData(buffer, 0, n);
            total += n;
            if (total > FastBytes)
            {
                Thread.Sleep(1); // the slow consumer this test is about, not a wait for the stack
            }
        }

        return (total, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }
}
