using System.Diagnostics;

namespace Beemesh.EndToEnd.Tests.Overlay;

/// <summary>
/// N network namespaces standing for N machines, each joined by a veth pair to a bridge that lives in
/// one more namespace made for the test: namespace i has <c>10.99.0.i/24</c> on <c>eth0</c>. Nothing
/// touches the host's interfaces. Dispose deletes every namespace (which takes the veths along).
/// </summary>
public sealed class BridgedNamespaces : IDisposable
{
    private readonly string _bridge;

    private BridgedNamespaces(string id, int count)
    {
        _bridge = $"bm-ovb-{id}";
        Names = [.. Enumerable.Range(1, count).Select(i => $"bm-ov{i}-{id}")];
    }

    /// <summary>The machines' namespace names; index i has address <see cref="Address"/>(i).</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The address of machine <paramref name="index"/> (0-based): 10.99.0.(index+1).</summary>
    public static string Address(int index) => $"10.99.0.{index + 1}";

    /// <summary>Creates the bridge namespace and <paramref name="count"/> machines.</summary>
    public static BridgedNamespaces Create(int count)
    {
        string id = Random.Shared.Next(0x1000, 0xFFFF).ToString("x4", System.Globalization.CultureInfo.InvariantCulture);
        var set = new BridgedNamespaces(id, count);
        try
        {
            Ip($"netns add {set._bridge}");
            Ip($"-n {set._bridge} link add br0 type bridge");
            Ip($"-n {set._bridge} link set br0 up");
            for (int i = 0; i < count; i++)
            {
                string ns = set.Names[i];
                Ip($"netns add {ns}");
                Ip($"-n {set._bridge} link add v{i} type veth peer name eth0 netns {ns}");
                Ip($"-n {set._bridge} link set v{i} master br0");
                Ip($"-n {set._bridge} link set v{i} up");
                Ip($"-n {ns} addr add {Address(i)}/24 dev eth0");
                Ip($"-n {ns} link set eth0 up");
                Ip($"-n {ns} link set lo up");
            }

            return set;
        }
        catch
        {
            set.Dispose();
            throw;
        }
    }

    /// <summary>Takes machine <paramref name="index"/>'s link down or up.</summary>
    public void SetLink(int index, bool up) => Ip($"-n {Names[index]} link set eth0 {(up ? "up" : "down")}");

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (string ns in Names.Append(_bridge))
        {
            TryIp($"netns del {ns}");
        }
    }

    private static void Ip(string arguments)
    {
        (int code, string output) = TryIp(arguments);
        if (code != 0)
        {
            throw new InvalidOperationException($"ip {arguments} failed: {output}");
        }
    }

    private static (int Code, string Output) TryIp(string arguments)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }
}
