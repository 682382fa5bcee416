using System.Diagnostics;
using System.Net;

namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// A network namespace made for one test, joined to the host namespace by a veth pair:
/// host side <c>10.250.N.1/30</c>, namespace side <c>10.250.N.2/30</c>. It stands for a client
/// on another machine, so port-forwarding tests can check that the guest sees the client's real
/// address. Traffic stays between the host and this namespace. Dispose removes both (always).
/// </summary>
public sealed class VethNamespace : IDisposable
{
    private readonly string _hostLink;

    private VethNamespace(string name, string hostLink, int subnet)
    {
        Name = name;
        _hostLink = hostLink;
        HostAddress = IPAddress.Parse($"10.250.{subnet}.1");
        PeerAddress = IPAddress.Parse($"10.250.{subnet}.2");
    }

    /// <summary>The namespace name (for <c>ip netns exec</c>).</summary>
    public string Name { get; }

    /// <summary>The host side's address.</summary>
    public IPAddress HostAddress { get; }

    /// <summary>The namespace side's address: the client's source address.</summary>
    public IPAddress PeerAddress { get; }

    /// <summary>Creates the namespace and the veth pair with a random subnet that no host interface uses.</summary>
    public static VethNamespace Create()
    {
        string id = Random.Shared.Next(0x100000, 0xFFFFFF).ToString("x6", System.Globalization.CultureInfo.InvariantCulture);
        string name = "bm-e2e-" + id;
        string hostLink = "bmh" + id;
        string peerLink = "bmp" + id;
        string used = Ip("-4 -o addr show").Output;
        int subnet = Random.Shared.Next(1, 255);
        while (used.Contains($"10.250.{subnet}.", StringComparison.Ordinal))
        {
            subnet = Random.Shared.Next(1, 255);
        }

        var ns = new VethNamespace(name, hostLink, subnet);
        try
        {
            Check(Ip($"netns add {name}"));
            Check(Ip($"link add {hostLink} type veth peer name {peerLink} netns {name}"));
            Check(Ip($"addr add {ns.HostAddress}/30 dev {hostLink}"));
            Check(Ip($"link set {hostLink} up"));
            Check(Ip($"-n {name} addr add {ns.PeerAddress}/30 dev {peerLink}"));
            Check(Ip($"-n {name} link set {peerLink} up"));
            Check(Ip($"-n {name} link set lo up"));
            return ns;
        }
        catch
        {
            ns.Dispose();
            throw;
        }
    }

    /// <summary>Runs a command inside the namespace and returns its exit code and output.</summary>
    /// <param name="arguments">The command and its arguments.</param>
    /// <param name="timeout">Kill it after this long.</param>
    public (int ExitCode, string Output) Exec(IEnumerable<string> arguments, TimeSpan timeout)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("netns");
        info.ArgumentList.Add("exec");
        info.ArgumentList.Add(Name);
        foreach (string a in arguments)
        {
            info.ArgumentList.Add(a);
        }

        return RunProcess(info, timeout);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        // Deleting the namespace destroys its veth end, which takes the host end with it;
        // delete the host end too in case the namespace was never made.
        Ip($"link del {_hostLink}");
        Ip($"netns del {Name}");
    }

    private static (int ExitCode, string Output) Ip(string arguments)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            info.ArgumentList.Add(a);
        }

        return RunProcess(info, TimeSpan.FromSeconds(10));
    }

    private static (int ExitCode, string Output) RunProcess(ProcessStartInfo info, TimeSpan timeout)
    {
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            ProcessTree.Kill(process);
            process.WaitForExit();
            return (-1, "timed out\n" + stdout.Result + stderr.Result);
        }

        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    private static void Check((int ExitCode, string Output) result)
    {
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException("ip failed: " + result.Output);
        }
    }
}
