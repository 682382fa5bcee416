using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Beemesh.LoadTests.Bench;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>
/// The comparison path: client -&gt; haproxy front (TCP mode, originates mutual TLS 1.3 with a
/// client certificate) -&gt; haproxy back (terminates TLS, requires a client certificate from the
/// same throwaway CA) -&gt; the target on 127.0.0.1. One front/back pair per target: either one
/// haproxy process with both halves on loopback (<see cref="StartAsync"/>), or the two halves in
/// two network namespaces (<see cref="StartAcrossAsync"/>). Front connections are not pooled:
/// every client connection is a new TLS handshake.
/// </summary>
internal sealed class HaproxyPair : IAsyncDisposable
{
    /// <summary>First front port of a pair split across namespaces (fronts count up from it).</summary>
    public const int SplitFrontBase = 20000;

    /// <summary>First back port of a pair split across namespaces.</summary>
    public const int SplitBackBase = 21000;

    private readonly IReadOnlyList<MeshProcess> _processes;

    private HaproxyPair(IReadOnlyList<MeshProcess> processes, IReadOnlyList<int> fronts)
    {
        _processes = processes;
        Fronts = fronts;
    }

    /// <summary>Front ports in the order of the targets given to <see cref="StartAsync"/>.</summary>
    public IReadOnlyList<int> Fronts { get; }

    public static async Task<HaproxyPair> StartAsync(string work, IReadOnlyList<int> targets, CommandLog log, CancellationToken cancellationToken)
    {
        string dir = Path.Combine(work, "haproxy");
        (string ca, string server, string client) = await CertificatesAsync(dir, "127.0.0.1", log, cancellationToken).ConfigureAwait(false);
        var config = new StringBuilder(Globals);
        var fronts = new List<int>();
        for (int i = 0; i < targets.Count; i++)
        {
            int front = FreePort();
            int back = FreePort();
            fronts.Add(front);
            config.Append(Front(i, front, "127.0.0.1", back, ca, client));
            config.Append(Back(i, "127.0.0.1", back, targets[i], ca, server));
        }

        MeshProcess process = await StartOneAsync(work, "haproxy", config.ToString(), null, log, cancellationToken).ConfigureAwait(false);
        if (!await ListeningAsync(null, fronts, process, cancellationToken).ConfigureAwait(false))
        {
            throw await FailedAsync(process).ConfigureAwait(false);
        }

        return new HaproxyPair([process], fronts);
    }

    /// <summary>
    /// The pair split across two network namespaces standing for two machines: the front haproxy
    /// in <paramref name="frontNamespace"/> listens on its 127.0.0.1 (ports from
    /// <see cref="SplitFrontBase"/>) and originates mutual TLS to the back haproxy in
    /// <paramref name="backNamespace"/> on <paramref name="backAddress"/> (ports from
    /// <see cref="SplitBackBase"/>), which forwards to each target port on its own 127.0.0.1.
    /// </summary>
    public static async Task<HaproxyPair> StartAcrossAsync(string work, IReadOnlyList<int> targets, string frontNamespace, string backNamespace, string backAddress, CommandLog log, CancellationToken cancellationToken)
    {
        string dir = Path.Combine(work, "haproxy");
        (string ca, string server, string client) = await CertificatesAsync(dir, backAddress, log, cancellationToken).ConfigureAwait(false);
        var frontConfig = new StringBuilder(Globals);
        var backConfig = new StringBuilder(Globals);
        var fronts = new List<int>();
        var backs = new List<int>();
        for (int i = 0; i < targets.Count; i++)
        {
            fronts.Add(SplitFrontBase + i);
            backs.Add(SplitBackBase + i);
            frontConfig.Append(Front(i, fronts[i], backAddress, backs[i], ca, client));
            backConfig.Append(Back(i, backAddress, backs[i], targets[i], ca, server));
        }

        MeshProcess back = await StartOneAsync(work, "haproxy-back", backConfig.ToString(), backNamespace, log, cancellationToken).ConfigureAwait(false);
        MeshProcess front = await StartOneAsync(work, "haproxy-front", frontConfig.ToString(), frontNamespace, log, cancellationToken).ConfigureAwait(false);
        var pair = new HaproxyPair([front, back], fronts);
        if (!await ListeningAsync(backNamespace, backs, back, cancellationToken).ConfigureAwait(false)
            || !await ListeningAsync(frontNamespace, fronts, front, cancellationToken).ConfigureAwait(false))
        {
            string tail = $"front: {front.Tail()}; back: {back.Tail()}";
            await pair.DisposeAsync().ConfigureAwait(false);
            throw new InvalidOperationException($"haproxy did not start: {tail}");
        }

        return pair;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (MeshProcess process in _processes)
        {
            await process.DisposeAsync().ConfigureAwait(false);
        }
    }

    private const string Globals = "global\n  log stderr format raw local0 err\n  tune.ssl.default-dh-param 2048\n\n" +
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\n";

    private static string Front(int i, int front, string backAddress, int back, string ca, string client) => string.Create(CultureInfo.InvariantCulture,
        $"listen front{i}\n  bind 127.0.0.1:{front}\n  server back {backAddress}:{back} ssl verify required ca-file {ca} crt {client} ssl-min-ver TLSv1.3\n\n");

    private static string Back(int i, string address, int back, int target, string ca, string server) => string.Create(CultureInfo.InvariantCulture,
        $"listen back{i}\n  bind {address}:{back} ssl crt {server} ca-file {ca} verify required ssl-min-ver TLSv1.3\n  server target 127.0.0.1:{target}\n\n");

    private static async Task<(string Ca, string Server, string Client)> CertificatesAsync(string dir, string serverAddress, CommandLog log, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(dir);
        string ca = Path.Combine(dir, "ca.pem");
        string caKey = Path.Combine(dir, "ca.key");
        await OpenSslAsync(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", caKey, "-out", ca, "-subj", "/CN=bench-ca", "-days", "1"], log, cancellationToken).ConfigureAwait(false);
        string server = await LeafAsync(dir, "server", serverAddress, ca, caKey, log, cancellationToken).ConfigureAwait(false);
        string client = await LeafAsync(dir, "client", "127.0.0.1", ca, caKey, log, cancellationToken).ConfigureAwait(false);
        return (ca, server, client);
    }

    private static async Task<MeshProcess> StartOneAsync(string work, string name, string config, string? networkNamespace, CommandLog log, CancellationToken cancellationToken)
    {
        string configPath = Path.Combine(work, "haproxy", name + ".cfg");
        await File.WriteAllTextAsync(configPath, config, cancellationToken).ConfigureAwait(false);
        string[] argv = networkNamespace is null
            ? ["haproxy", "-db", "-f", configPath]
            : ["ip", "netns", "exec", networkNamespace, "haproxy", "-db", "-f", configPath];
        return MeshProcess.Start(argv, Path.Combine(work, name + ".log"), log, "haproxy");
    }

    /// <summary>Waits up to 5 s for every port to listen (on 127.0.0.1 here, or on any address in the namespace).</summary>
    private static async Task<bool> ListeningAsync(string? networkNamespace, IReadOnlyList<int> ports, MeshProcess process, CancellationToken cancellationToken)
    {
        for (int i = 0; i < 200 && !process.HasExited; i++)
        {
            if (networkNamespace is null
                ? ports.All(IsListening)
                : await ListeningInAsync(networkNamespace, ports, cancellationToken).ConfigureAwait(false))
            {
                return true;
            }

            await Task.Delay(25, cancellationToken).ConfigureAwait(false);
        }

        return false;
    }

    private static async Task<bool> ListeningInAsync(string networkNamespace, IReadOnlyList<int> ports, CancellationToken cancellationToken)
    {
        ProcessResult ss = await ProcessRunner.RunAsync(["ss", "-N", networkNamespace, "-ltnH"], TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        return ports.All(p => ss.StandardOutput.Contains(":" + p.ToString(CultureInfo.InvariantCulture) + " ", StringComparison.Ordinal));
    }

    private static async Task<Exception> FailedAsync(MeshProcess process)
    {
        string tail = process.Tail();
        await process.DisposeAsync().ConfigureAwait(false);
        return new InvalidOperationException($"haproxy did not start: {tail}");
    }


    private static async Task<string> LeafAsync(string dir, string name, string address, string ca, string caKey, CommandLog log, CancellationToken cancellationToken)
    {
        string key = Path.Combine(dir, name + ".key");
        string cert = Path.Combine(dir, name + ".crt");
        await OpenSslAsync(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", cert, "-subj", "/CN=" + name, "-days", "1", "-CA", ca, "-CAkey", caKey,
            "-addext", "subjectAltName=IP:" + address, "-addext", "basicConstraints=critical,CA:FALSE"], log, cancellationToken).ConfigureAwait(false);
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
