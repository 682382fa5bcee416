using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Beemesh.LoadTests.Bench;

/// <summary>An <c>iperf3 -s</c> bound to the host's 127.0.0.1, run under a guard.</summary>
internal sealed class IperfServer : IAsyncDisposable
{
    private readonly GuardedProcess _process;

    private IperfServer(GuardedProcess process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public static async Task<IperfServer> StartAsync(string workDirectory, string scope, CommandLog log, CancellationToken cancellationToken)
    {
        int port = FreeLoopbackPort();
        string[] argv = ["iperf3", "-s", "-B", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture)];
        log.Add(scope, argv);
        string logPath = Path.Combine(workDirectory, $"iperf3-server-{scope}.log");
        GuardedProcess process = await GuardedProcess.StartAsync(argv, logPath, "").ConfigureAwait(false);
        for (int i = 0; i < 200; i++)
        {
            if (IsListening(port))
            {
                return new IperfServer(process, port);
            }

            if (!process.IsAlive)
            {
                break;
            }

            await Task.Delay(25, cancellationToken).ConfigureAwait(false);
        }

        string tail = process.LogTail();
        await process.DisposeAsync().ConfigureAwait(false);
        throw new InvalidOperationException($"iperf3 server did not start: {tail}");
    }

    public ValueTask DisposeAsync() => _process.DisposeAsync();

    /// <summary>True when /proc/net/tcp shows a listener on 127.0.0.1:<paramref name="port"/> (iperf3 buffers its own banner).</summary>
    private static bool IsListening(int port)
    {
        string local = $"0100007F:{port:X4}";
        foreach (string line in File.ReadLines("/proc/net/tcp"))
        {
            string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 3 && fields[1] == local && fields[3] == "0A")
            {
                return true;
            }
        }

        return false;
    }

    private static int FreeLoopbackPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }
}
