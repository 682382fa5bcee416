using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Beemesh.Netstack.Link;
using Beemesh.Slirp.Cli;
using Beemesh.Interop;

namespace Beemesh.Slirp.Sandbox;

/// <summary>
/// <c>--enable-sandbox</c>, as slirp4netns 1.2 does it: after setup the process lives in a private
/// mount namespace whose root is an empty tmpfs holding only the resolver configuration and the API
/// socket's directory, with every capability dropped but CAP_NET_BIND_SERVICE.
/// </summary>
/// <remarks>
/// A .NET process has several threads from its first instruction, and unshare(CLONE_NEWNS) and
/// capset(2) act on the calling thread only. So the single-threaded <c>beemesh-nsenter sandbox</c>
/// does that part before the runtime starts: <see cref="Exec"/> replaces this process (same pid, so
/// podman's bookkeeping holds) with the helper, which opens the tap, builds the new root, drops
/// capabilities and executes this program again with the same arguments and a
/// <see cref="SandboxHandoff"/>. The second run sets up (API socket, resolv.conf) while the old root is
/// still visible, then calls <see cref="PivotIntoSandbox"/>: pivot_root moves the root of every
/// thread at once, since it acts on the mount namespace, not on a thread.
/// </remarks>
public static partial class SlirpSandboxLauncher
{
    /// <summary>The resolver configuration the stack reads, kept read-only in the new root.</summary>
    public const string ResolvConfPath = "/etc/resolv.conf";

    /// <summary>
    /// Replaces this process with <c>beemesh-nsenter sandbox</c>; returns only when that failed, with
    /// the one line to print.
    /// </summary>
    /// <param name="o">The parsed command line.</param>
    /// <param name="args">The command line as given, passed on unchanged.</param>
    /// <param name="tapName">The tap name as the kernel will see it.</param>
    /// <returns>Why the exec did not happen.</returns>
    public static string Exec(SlirpOptions o, IReadOnlyList<string> args, string tapName)
    {
        string helper;
        try
        {
            helper = NsenterSession.LocateHelper(null);
        }
        catch (TapOpenException e)
        {
            return e.Message;
        }

        string program = Environment.ProcessPath ?? "/proc/self/exe";
        var argv = new List<string> { helper, "sandbox" };
        if (o.NetnsType == SlirpNetnsType.Pid)
        {
            argv.AddRange(["--pid", o.TargetPid!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        }
        else
        {
            argv.AddRange(["--netns", o.NetnsPath ?? o.Target]);
        }

        if (o.UsernsPath is not null)
        {
            argv.AddRange(["--userns", o.UsernsPath]);
        }

        if (o.Configure)
        {
            argv.Add("--configure");
        }

        NsenterSession.AddTapArguments(
            argv, tapName, Environment.GetEnvironmentVariable("BEEMESH_NO_OFFLOAD") is null, o.Configure, o.Mtu,
            $"{o.Guest}/{o.PrefixLength}", o.Gateway.ToString(),
            o.MacAddress is { } mac ? string.Join(":", mac.Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture))) : null,
            o.EnableIpv6);
        foreach (string keep in KeptPaths(o.ApiSocket, writable: false))
        {
            argv.AddRange(["--keep", keep]);
        }

        foreach (string keep in KeptPaths(o.ApiSocket, writable: true))
        {
            argv.AddRange(["--keep-writable", keep]);
        }

        argv.AddRange(["--", program, ArgvZero() ?? program, .. args]);
        Console.Out.Flush();
        Console.Error.Flush();
        ExecV.Run(helper, [.. argv]);
        return $"cannot run {helper}: {Marshal.GetLastPInvokeErrorMessage()}";
    }

    /// <summary>
    /// The paths the new root holds: resolv.conf read-only; the API socket's directory writable (the
    /// socket is bound before the pivot, and removing it at exit must still work). Paths that do not
    /// exist are left out, so their absence fails later with slirp4netns's own message.
    /// </summary>
    /// <param name="apiSocket">The <c>-a</c> path, or null.</param>
    /// <param name="writable">Which of the two lists.</param>
    /// <returns>Absolute paths.</returns>
    public static IEnumerable<string> KeptPaths(string? apiSocket, bool writable)
    {
        if (!writable && File.Exists(ResolvConfPath))
        {
            yield return ResolvConfPath;
        }

        if (writable && apiSocket is not null && Path.GetDirectoryName(Path.GetFullPath(apiSocket)) is { } dir && Directory.Exists(dir))
        {
            yield return dir;
        }
    }

    /// <summary>
    /// Asks the pivot helper to move the mount namespace's root into the sandbox, waits for its answer,
    /// then leaves the old tree's working directory. Returns null on success, else the reason.
    /// </summary>
    /// <param name="handoff">What the helper handed over.</param>
    /// <returns>Null, or the helper's error text.</returns>
    public static string? PivotIntoSandbox(SandboxHandoff handoff)
    {
        ArgumentNullException.ThrowIfNull(handoff);
        try
        {
            using var socket = new Socket(new SafeSocketHandle(handoff.PivotFd, ownsHandle: true));
            socket.Send("p"u8);
            var reply = new StringBuilder();
            var buffer = new byte[256];
            int n;
            while ((n = socket.Receive(buffer)) > 0)
            {
                reply.Append(Encoding.UTF8.GetString(buffer, 0, n));
                if (reply.ToString().Contains('\n', StringComparison.Ordinal))
                {
                    break;
                }
            }

            string line = reply.ToString().Trim();
            if (line != "ok")
            {
                return line.StartsWith("error ", StringComparison.Ordinal) ? line["error ".Length..] : "the pivot helper gave no answer";
            }

            Directory.SetCurrentDirectory("/");
            return null;
        }
        catch (SocketException e)
        {
            return $"the pivot helper is unreachable: {e.Message}";
        }
    }

    /// <summary>argv[0] as this process was started with (podman calls us "slirp4netns").</summary>
    private static string? ArgvZero()
    {
        try
        {
            byte[] cmdline = File.ReadAllBytes("/proc/self/cmdline");
            int end = Array.IndexOf(cmdline, (byte)0);
            return end > 0 ? Encoding.UTF8.GetString(cmdline, 0, end) : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
