using System.Diagnostics;
using Beemesh.EndToEnd.Tests.Support;

namespace Beemesh.LoadTests.Bench;

/// <summary>
/// A fresh network namespace owned by a fresh user namespace (root mapped to the caller), held
/// open by a <c>cat</c> reading a pipe only the harness holds: closing the pipe, or the harness
/// dying, ends the holder and with it the namespaces.
/// </summary>
internal sealed class NetworkNamespace : IAsyncDisposable
{
    private readonly Process _holder;

    private NetworkNamespace(Process holder) => _holder = holder;

    /// <summary>Pid of the process whose namespaces these are (what slirp4netns and pasta take).</summary>
    public int Pid => _holder.Id;

    public static async Task<NetworkNamespace> CreateAsync(CommandLog log, string scope, CancellationToken cancellationToken)
    {
        string[] argv = ["unshare", "--user", "--map-root-user", "--net", "cat"];
        log.Add(scope, argv);
        Process holder = Process.Start(ProcessRunner.StartInfo(argv)) ?? throw new InvalidOperationException("cannot start unshare");
        ChildProcesses.Track(holder);
        var ns = new NetworkNamespace(holder);
        string ours = ReadNetNs(Environment.ProcessId);
        for (int i = 0; i < 100; i++)
        {
            if (holder.HasExited)
            {
                string err = await holder.StandardError.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
                await ns.DisposeAsync().ConfigureAwait(false);
                throw new InvalidOperationException($"unshare failed: {err.Trim()}");
            }

            string theirs = ReadNetNs(holder.Id);
            if (theirs.Length > 0 && theirs != ours)
            {
                return ns;
            }

            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }

        await ns.DisposeAsync().ConfigureAwait(false);
        throw new TimeoutException("unshare did not enter a new network namespace within 2 s");
    }

    /// <summary>The command line that runs <paramref name="argv"/> inside these namespaces.</summary>
    public IReadOnlyList<string> Enter(params string[] argv) =>
        ["nsenter", "-t", Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", "-n", "--preserve-credentials", .. argv];

    public async ValueTask DisposeAsync()
    {
        try
        {
            _holder.StandardInput.Close();
        }
        catch (IOException)
        {
        }

        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await _holder.WaitForExitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            ProcessTree.Kill(_holder);
            await _holder.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }

        ChildProcesses.Forget(_holder);
        _holder.Dispose();
    }

    private static string ReadNetNs(int pid)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/ns/net").LinkTarget ?? "";
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }
}
