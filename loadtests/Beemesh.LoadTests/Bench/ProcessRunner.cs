using System.Diagnostics;
using Beemesh.EndToEnd.Tests.Support;

namespace Beemesh.LoadTests.Bench;

/// <summary>Runs short-lived commands with a timeout, capturing their output; killed on abort.</summary>
internal static class ProcessRunner
{
    public static ProcessStartInfo StartInfo(IReadOnlyList<string> argv)
    {
        var info = new ProcessStartInfo(argv[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        for (int i = 1; i < argv.Count; i++)
        {
            info.ArgumentList.Add(argv[i]);
        }

        return info;
    }

    public static async Task<ProcessResult> RunAsync(IReadOnlyList<string> argv, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var process = Process.Start(StartInfo(argv)) ?? throw new InvalidOperationException($"cannot start {argv[0]}");
        ChildProcesses.Track(process);
        try
        {
            process.StandardInput.Close();
            Task<string> stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            Task<string> stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(timeout);
            try
            {
                await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                ProcessTree.Kill(process);
                await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                throw new TimeoutException($"{argv[0]} did not finish within {timeout.TotalSeconds:0} s");
            }

            return new ProcessResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
        }
        finally
        {
            ChildProcesses.Forget(process);
        }
    }
}
