using System.Text.RegularExpressions;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Netstack;

/// <summary>
/// Byte-exact bulk TCP transfers of <c>BEEMESH_E2E_BYTES</c> bytes (default 10 GiB) each way.
/// </summary>
/// <remarks>
/// Design, chosen by measurement on the 2-core CI machine:
/// <list type="bullet">
/// <item>Content: AES-128-CTR over zeros with a fixed key — deterministic, incompressible and
/// made at several GB/s by <c>openssl enc</c> in the guest and by <see cref="PseudoRandomStream"/>
/// on the host (python3 generating bytes itself would be the bottleneck).</item>
/// <item>Hash: SHA-256 on both sides, with python3's hashlib in the guest (about 1.8 GB/s with the
/// CPU's SHA extensions; coreutils <c>sha256sum</c> manages only about 0.4 GB/s here and would cap
/// the transfer) and <see cref="System.Security.Cryptography.IncrementalHash"/> on the host.
/// The sender hashes what it sends, the receiver what it receives; equal counts and hashes mean
/// byte-exact delivery.</item>
/// </list>
/// The rate reported is the host's view (accept to end of stream).
/// </remarks>
[Collection(NamespacesCollection.Name)]
public sealed class BulkTransferTests(ITestOutputHelper output)
{
    private const long DefaultBytes = 10L << 30;

    private static long Bytes => BeemeshEnvironment.ByteCount("BEEMESH_E2E_BYTES", DefaultBytes);

    /// <summary>Generous: 60 s plus 40 MB/s; a stall fails the test instead of hanging the suite.</summary>
    private static TimeSpan Timeout => TimeSpan.FromSeconds(60 + (Bytes / 40e6));

    [SkippableFact]
    public async Task Guest_to_host_stream_arrives_byte_exact()
    {
        BeemeshEnvironment.RequireReady("python3", "openssl");
        using var cts = new CancellationTokenSource(Timeout);
        using var server = BulkTransferServer.StartSink(cts.Token);
        using var files = new GuestFiles();
        string sender = files.Write("bulk_send.py", GuestPrograms.BulkSend);
        string script = $"openssl enc -aes-128-ctr -K {PseudoRandomStream.KeyHex} -iv 00000000000000000000000000000000 -nosalt -in /dev/zero 2>/dev/null"
            + $" | head -c {Bytes} | python3 {sender} 10.0.2.2 {server.EndPoint.Port}";

        var result = await BeemeshRun.RunAsync(["--debug"], script, Timeout);

        output.WriteLine(result.ToString());
        Assert.Equal(0, result.ExitCode);
        var received = await server.Completion.WaitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine($"guest -> host: {received}");
        output.WriteLine(result.CounterSummary());
        var sent = Regex.Match(result.Stdout, @"sent (\d+) ([0-9a-f]{64})");
        Assert.True(sent.Success, result.ToString());
        Assert.Equal(Bytes.ToString(System.Globalization.CultureInfo.InvariantCulture), sent.Groups[1].Value);
        Assert.Equal(Bytes, received.Bytes);
        Assert.Equal(sent.Groups[2].Value, received.Sha256);
    }

    [SkippableFact]
    public async Task Host_to_guest_stream_arrives_byte_exact()
    {
        BeemeshEnvironment.RequireReady("python3");
        using var cts = new CancellationTokenSource(Timeout);
        using var server = BulkTransferServer.StartSource(Bytes, cts.Token);
        using var files = new GuestFiles();
        string receiver = files.Write("bulk_recv.py", GuestPrograms.BulkReceive);

        var result = await BeemeshRun.RunAsync(["--debug"], $"python3 {receiver} 10.0.2.2 {server.EndPoint.Port}", Timeout);

        output.WriteLine(result.ToString());
        Assert.Equal(0, result.ExitCode);
        var sent = await server.Completion.WaitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine($"host -> guest: {sent}");
        output.WriteLine(result.CounterSummary());
        var received = Regex.Match(result.Stdout, @"received (\d+) ([0-9a-f]{64})");
        Assert.True(received.Success, result.ToString());
        Assert.Equal(Bytes.ToString(System.Globalization.CultureInfo.InvariantCulture), received.Groups[1].Value);
        Assert.Equal(Bytes, sent.Bytes);
        Assert.Equal(sent.Sha256, received.Groups[2].Value);
    }
}
