using System.Net;
using System.Net.Sockets;
using Beemesh.LoadTests.OverlayMeshBench;

namespace Beemesh.LoadTests.Tests.OverlayMeshBench;

/// <summary>The start-to-first-call prober against loopback listeners.</summary>
public sealed class FirstCallClientTests
{
    [Fact]
    public async Task AnEchoingListenerIsReachedAndTheTriesAreCounted()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var stop = new CancellationTokenSource();
        // Every connection is echoed: on a loaded machine a first try can outlast its 2 s limit, and
        // the next one must find the listener still serving.
        Task echo = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    Socket peer = await listener.AcceptAsync(stop.Token);
                    _ = Task.Run(async () =>
                    {
                        using (peer)
                        {
                            byte[] buffer = new byte[64];
                            int read;
                            while ((read = await peer.ReceiveAsync(buffer)) > 0)
                            {
                                await peer.SendAsync(buffer.AsMemory(0, read));
                            }
                        }
                    });
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        var output = new StringWriter();

        int code = await FirstCallClient.RunAsync("127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port, TimeSpan.FromSeconds(30), output, CancellationToken.None);
        stop.Cancel();
        await echo;

        Assert.Equal(0, code);
        string[] lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith(FirstCallClient.ProbingLine, lines[0], StringComparison.Ordinal);
        // An address needs no lookup: resolved at the first try, whatever became of that try.
        Assert.StartsWith($"{FirstCallClient.ResolvedLine} 127.0.0.1 -> 127.0.0.1 at try 1", lines[1], StringComparison.Ordinal);
        var ok = System.Text.RegularExpressions.Regex.Match(lines[^1], $"^{System.Text.RegularExpressions.Regex.Escape(FirstCallClient.OkLine)} after (\\d+) tries");
        Assert.True(ok.Success, output.ToString());
        // One line per distinct failure in between, and as many tries counted as made.
        Assert.True(int.Parse(ok.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= lines.Length - 2, output.ToString());
    }

    [Fact]
    public async Task ARefusingPortIsRetriedUntilTheLimitAndTheReasonIsPrintedOnce()
    {
        int port;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            port = ((IPEndPoint)probe.LocalEndPoint!).Port;
        }

        var output = new StringWriter();
        int code = await FirstCallClient.RunAsync("127.0.0.1", port, TimeSpan.FromMilliseconds(300), output, CancellationToken.None);

        Assert.Equal(1, code);
        string text = output.ToString();
        Assert.Single(text.Split('\n'), l => l.StartsWith(FirstCallClient.FailLine, StringComparison.Ordinal));
        Assert.Contains("ConnectionRefused", text, StringComparison.Ordinal);
        Assert.Contains("first-call gave up after", text, StringComparison.Ordinal);
        Assert.DoesNotContain(FirstCallClient.OkLine, text, StringComparison.Ordinal);
    }
}
