using System.Globalization;
using System.Net;

namespace Beemesh.LoadTests.Bench;

/// <summary>
/// An implementation with the slirp4netns command line (slirp4netns itself, beemesh-slirp):
/// <c>-c -m MTU -r 3 PID tap0</c>; ready when "1" appears on fd 3. Host loopback is 10.0.2.2.
/// </summary>
internal sealed class SlirpCompatibleImplementation(string name, string path, string? notBuiltHint) : NetstackImplementation(name)
{
    private static readonly IPAddress s_gateway = IPAddress.Parse("10.0.2.2");

    public override string? Unavailable => File.Exists(path) ? null : notBuiltHint ?? $"{path} not found";

    public override async Task<RunningNetstack> StartAsync(NetworkNamespace ns, int mtu, string workDirectory, CommandLog log, CancellationToken cancellationToken)
    {
        string readyPath = Path.Combine(workDirectory, $"{Name}.ready");
        File.WriteAllText(readyPath, "");
        string[] argv = [path, "-c", "-m", mtu.ToString(CultureInfo.InvariantCulture), "-r", "3", ns.Pid.ToString(CultureInfo.InvariantCulture), "tap0"];
        log.Add(Name, [.. argv, "3>READY_FILE"]);
        GuardedProcess process = await GuardedProcess.StartAsync(argv, Path.Combine(workDirectory, $"{Name}.log"), "3>" + CommandLog.QuoteOne(readyPath)).ConfigureAwait(false);
        try
        {
            await WaitUntilAsync(
                () => Task.FromResult(File.ReadAllText(readyPath).StartsWith('1')),
                process,
                Name,
                cancellationToken).ConfigureAwait(false);
            return new RunningNetstack(process, s_gateway);
        }
        catch
        {
            await process.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public override async Task<string> VersionAsync(CancellationToken cancellationToken)
    {
        if (Unavailable is not null)
        {
            return Unavailable;
        }

        try
        {
            ProcessResult result = await ProcessRunner.RunAsync([path, "--version"], TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
            string first = result.StandardOutput.Split('\n')[0].Trim();
            return first.Length > 0 ? first : result.Why;
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
        {
            return ex.Message;
        }
    }
}
