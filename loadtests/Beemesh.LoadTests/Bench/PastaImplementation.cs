using System.Globalization;
using System.Net;

namespace Beemesh.LoadTests.Bench;

/// <summary>
/// pasta (package passt) attached to the namespace by pid, configuring it itself (--config-net),
/// with every port forwarder off so only the tap path is measured. pasta copies the host's
/// addresses into the namespace and maps connections to the default gateway's address onto
/// the host (see "--no-map-gw" in pasta(1)), which is the equivalent of slirp's 10.0.2.2.
/// Ready when the namespace has a default route.
/// </summary>
internal sealed class PastaImplementation(string path) : NetstackImplementation("pasta")
{
    public override string? Unavailable => File.Exists(path) ? null : $"{path} not found (apt-get install passt)";

    public override async Task<RunningNetstack> StartAsync(NetworkNamespace ns, int mtu, string workDirectory, CommandLog log, CancellationToken cancellationToken)
    {
        var argv = new List<string> { path, "-f" };
        if (Environment.IsPrivilegedProcess)
        {
            // pasta drops to "nobody" when started as root, and nobody may not enter a user
            // namespace owned by root.
            argv.AddRange(["--runas", "0"]);
        }

        argv.AddRange(["--config-net", "-m", mtu.ToString(CultureInfo.InvariantCulture), "-t", "none", "-u", "none", "-T", "none", "-U", "none", ns.Pid.ToString(CultureInfo.InvariantCulture)]);
        log.Add(Name, argv);
        GuardedProcess process = await GuardedProcess.StartAsync(argv, Path.Combine(workDirectory, "pasta.log"), "").ConfigureAwait(false);
        try
        {
            IPAddress? gateway = null;
            await WaitUntilAsync(
                async () =>
                {
                    ProcessResult route = await ProcessRunner.RunAsync(ns.Enter("ip", "-4", "route", "show", "default"), TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
                    string[] words = route.StandardOutput.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
                    int via = Array.IndexOf(words, "via");
                    return via >= 0 && via + 1 < words.Length && IPAddress.TryParse(words[via + 1], out gateway);
                },
                process,
                Name,
                cancellationToken).ConfigureAwait(false);
            log.Add(Name, ns.Enter("ip", "-4", "route", "show", "default"));
            return new RunningNetstack(process, gateway!);
        }
        catch
        {
            await process.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public override async Task<string> VersionAsync(CancellationToken cancellationToken)
    {
        try
        {
            ProcessResult result = await ProcessRunner.RunAsync(["dpkg-query", "-W", "-f", "${Version}", "passt"], TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
            return result.ExitCode == 0 ? $"passt {result.StandardOutput.Trim()} (Debian package)" : "pasta (version unknown)";
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
        {
            return "pasta (version unknown)";
        }
    }
}
