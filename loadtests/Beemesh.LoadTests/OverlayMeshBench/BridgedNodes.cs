using System.Globalization;
using Beemesh.LoadTests.Bench;

namespace Beemesh.LoadTests.OverlayMeshBench;

/// <summary>
/// N network namespaces standing for N machines, each joined by a veth pair to a bridge that lives
/// in one more namespace made for the run: node i has <c>10.98.0.(i+1)/24</c> on <c>eth0</c> and
/// its own loopback. Nothing touches the host's interfaces. Dispose deletes every namespace (the
/// veths go with them).
/// </summary>
internal sealed class BridgedNodes : IDisposable
{
    private readonly string _bridge;

    private BridgedNodes(string id, int count)
    {
        _bridge = $"bm-xbb-{id}";
        Names = [.. Enumerable.Range(1, count).Select(i => $"bm-xb{i}-{id}")];
    }

    /// <summary>The nodes' namespace names; node i has address <see cref="Address"/>(i).</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The address of node <paramref name="index"/> (0-based) on the bridge.</summary>
    public static string Address(int index) => string.Create(CultureInfo.InvariantCulture, $"10.98.0.{index + 1}");

    /// <summary>Creates the bridge namespace and <paramref name="count"/> nodes.</summary>
    public static async Task<BridgedNodes> CreateAsync(int count, CommandLog log, CancellationToken cancellationToken)
    {
        string id = Random.Shared.Next(0x1000, 0xFFFF).ToString("x4", CultureInfo.InvariantCulture);
        var set = new BridgedNodes(id, count);
        try
        {
            await IpAsync(log, cancellationToken, "netns", "add", set._bridge).ConfigureAwait(false);
            await IpAsync(log, cancellationToken, "-n", set._bridge, "link", "add", "br0", "type", "bridge").ConfigureAwait(false);
            await IpAsync(log, cancellationToken, "-n", set._bridge, "link", "set", "br0", "up").ConfigureAwait(false);
            for (int i = 0; i < count; i++)
            {
                string ns = set.Names[i];
                string veth = "v" + i.ToString(CultureInfo.InvariantCulture);
                await IpAsync(log, cancellationToken, "netns", "add", ns).ConfigureAwait(false);
                await IpAsync(log, cancellationToken, "-n", set._bridge, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns).ConfigureAwait(false);
                await IpAsync(log, cancellationToken, "-n", set._bridge, "link", "set", veth, "master", "br0").ConfigureAwait(false);
                await IpAsync(log, cancellationToken, "-n", set._bridge, "link", "set", veth, "up").ConfigureAwait(false);
                await IpAsync(log, cancellationToken, "-n", ns, "addr", "add", Address(i) + "/24", "dev", "eth0").ConfigureAwait(false);
                await IpAsync(log, cancellationToken, "-n", ns, "link", "set", "eth0", "up").ConfigureAwait(false);
                await IpAsync(log, cancellationToken, "-n", ns, "link", "set", "lo", "up").ConfigureAwait(false);
            }

            return set;
        }
        catch
        {
            set.Dispose();
            throw;
        }
    }

    /// <summary>The command line that runs <paramref name="argv"/> in node <paramref name="index"/>'s namespace.</summary>
    public string[] Exec(int index, params string[] argv) => ["ip", "netns", "exec", Names[index], .. argv];

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (string ns in Names.Append(_bridge))
        {
            try
            {
                ProcessRunner.RunAsync(["ip", "netns", "del", ns], TimeSpan.FromSeconds(10), CancellationToken.None).GetAwaiter().GetResult();
            }
            catch (TimeoutException)
            {
            }
        }
    }

    private static async Task IpAsync(CommandLog log, CancellationToken cancellationToken, params string[] args)
    {
        string[] argv = ["ip", .. args];
        log.Add("topology", argv);
        ProcessResult result = await ProcessRunner.RunAsync(argv, TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{CommandLog.Quote(argv)} failed: {result.StandardError.Trim()}");
        }
    }
}
