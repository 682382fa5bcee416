using System.Globalization;
using Beemesh.LoadTests.Bench;
using Beemesh.LoadTests.MeshBench;

namespace Beemesh.LoadTests.StateBench;

/// <summary>
/// A redis-server on 127.0.0.1 holding its data in memory only (<c>--save ""</c>,
/// <c>--appendonly no</c>), like an eventual store, with no configuration file.
/// </summary>
internal sealed class RedisServer : IAsyncDisposable
{
    private readonly MeshProcess _process;

    private RedisServer(MeshProcess process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public static async Task<RedisServer> StartAsync(string work, CommandLog log, CancellationToken cancellationToken)
    {
        int port = HaproxyPair.FreePort();
        MeshProcess process = MeshProcess.Start(
            ["redis-server", "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", work, "--daemonize", "no"],
            Path.Combine(work, "redis.log"), log, "redis", marker: "Ready to accept connections");
        var server = new RedisServer(process, port);
        try
        {
            await process.Marker.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
            return server;
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}
