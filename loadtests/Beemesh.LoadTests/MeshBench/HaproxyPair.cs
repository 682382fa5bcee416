using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Beemesh.LoadTests.Bench;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>
/// The comparison path: client -&gt; haproxy front (TCP mode, originates mutual TLS 1.3 with a
/// client certificate) -&gt; haproxy back (terminates TLS, requires a client certificate from the
/// same throwaway CA) -&gt; the target on 127.0.0.1. One haproxy process, one front/back pair per
/// target, all on loopback. Front connections are not pooled: every client connection is a
/// new TLS handshake.
/// </summary>
internal sealed class HaproxyPair : IAsyncDisposable
{
    private readonly MeshProcess _process;

    private HaproxyPair(MeshProcess process, IReadOnlyList<int> fronts)
    {
        _process = process;
        Fronts = fronts;
    }

    /// <summary>Front ports in the order of the targets given to <see cref="StartAsync"/>.</summary>
    public IReadOnlyList<int> Fronts { get; }

    public static async Task<HaproxyPair> StartAsync(string work, IReadOnlyList<int> targets, CommandLog log, CancellationToken cancellationToken)
    {
        string dir = Path.Combine(work, "haproxy");
        Directory.CreateDirectory(dir);
        string ca = Path.Combine(dir, "ca.pem");
        string caKey = Path.Combine(dir, "ca.key");
        await OpenSslAsync(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", caKey, "-out", ca, "-subj", "/CN=bench-ca", "-days", "1"], log, cancellationToken).ConfigureAwait(false);
        string server = await LeafAsync(dir, "server", ca, caKey, log, cancellationToken).ConfigureAwait(false);
        string client = await LeafAsync(dir, "client", ca, caKey, log, cancellationToken).ConfigureAwait(false);

        var config = new StringBuilder();
        config.AppendLine("global\n  log stderr format raw local0 err\n  tune.ssl.default-dh-param 2048\n");
        config.AppendLine("defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n");
        var fronts = new List<int>();
        for (int i = 0; i < targets.Count; i++)
        {
            int front = FreePort();
            int back = FreePort();
            fronts.Add(front);
            string t = targets[i].ToString(CultureInfo.InvariantCulture);
            config.AppendLine(CultureInfo.InvariantCulture, $"listen front{i}\n  bind 127.0.0.1:{front}\n  server back 127.0.0.1:{back} ssl verify required ca-file {ca} crt {client} ssl-min-ver TLSv1.3\n");
            config.AppendLine(CultureInfo.InvariantCulture, $"listen back{i}\n  bind 127.0.0.1:{back} ssl crt {server} ca-file {ca} verify required ssl-min-ver TLSv1.3\n  server target 127.0.0.1:{t}\n");
        }

        string configPath = Path.Combine(dir, "haproxy.cfg");
        await File.WriteAllTextAsync(configPath, config.ToString(), cancellationToken).ConfigureAwait(false);
        MeshProcess process = MeshProcess.Start(["haproxy", "-db", "-f", configPath], Path.Combine(work, "haproxy.log"), log, "haproxy");
        for (int i = 0; i < 200 && !process.HasExited; i++)
        {
            if (fronts.TrueForAll(IsListening))
            {
                return new HaproxyPair(process, fronts);
            }

            await Task.Delay(25, cancellationToken).ConfigureAwait(false);
        }

        string tail = process.Tail();
        await process.DisposeAsync().ConfigureAwait(false);
        throw new InvalidOperationException($"haproxy did not start: {tail}");
    }

    public ValueTask DisposeAsync() => _process.DisposeAsync();

    private static async Task<string> LeafAsync(string dir, string name, string ca, string caKey, CommandLog log, CancellationToken cancellationToken)
    {
        string key = Path.Combine(dir, name + ".key");
        string cert = Path.Combine(dir, name + ".crt");
        await OpenSslAsync(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", cert, "-subj", "/CN=" + name, "-days", "1", "-CA", ca, "-CAkey", caKey,
            "-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"], log, cancellationToken).ConfigureAwait(false);
        string pem = Path.Combine(dir, name + ".pem");
        await File.WriteAllTextAsync(pem, await File.ReadAllTextAsync(cert, cancellationToken).ConfigureAwait(false)
            + await File.ReadAllTextAsync(key, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        return pem;
    }

    private static async Task OpenSslAsync(string[] argv, CommandLog log, CancellationToken cancellationToken)
    {
        log.Add("haproxy", argv);
        ProcessResult result = await ProcessRunner.RunAsync(argv, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"openssl failed: {result.StandardError}");
        }
    }

    /// <summary>A port free on 127.0.0.1 right now (the kernel's pick).</summary>
    internal static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private static bool IsListening(int port)
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Connect(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
