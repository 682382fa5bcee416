using System.Diagnostics;
using System.Text;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Slirp;

/// <summary>
/// Command lines that pass slirp4netns's parser but are odd at run time (a user namespace given
/// with a PID target, a namespace path that is no namespace, a closed exit fd, ...), run against
/// the real slirp4netns and beemesh-slirp one after the other on the same guest namespace. Both
/// must either come up (write "1" on the ready fd) or exit with the same status; beemesh-slirp's
/// failure is one line on stderr, never an unhandled exception.
/// </summary>
[Collection("namespaces")]
public sealed class SlirpOddCommandLineTests(ITestOutputHelper output)
{
    /// <summary>What an implementation did with a command line.</summary>
    private sealed record Outcome(bool Ready, int ExitCode, string Stderr)
    {
        public override string ToString() => Ready ? "ready" : $"exit {ExitCode}, stderr: {Stderr.Trim()}";
    }

    // {PID} is the guest's pid; the tap name is the last operand of every case.
    public static TheoryData<string> CommandLines() => new()
    {
        "--userns-path=/proc/{PID}/ns/user {PID} tapa",
        "--userns-path=/proc/self/ns/user {PID} tapb",
        "--userns-path=/etc/passwd {PID} tapc",
        "--netns-type=path --userns-path=/proc/{PID}/ns/user /proc/{PID}/ns/net tapd",
        "--netns-type=path /etc/passwd tape",
        "--netns-type=path /proc/{PID}/ns/user tapf",
        "999999999 tapg",
        "{PID} bad/name",
        "{PID} averyveryverylongtapname",
        "-e 99 {PID} taph",
        "-a /nonexistent/dir/api.sock {PID} tapi",
        "--enable-seccomp --userns-path=/proc/{PID}/ns/user -6 {PID} tapj",
    };

    [SkippableTheory]
    [MemberData(nameof(CommandLines))]
    public async Task Odd_command_line_ends_as_with_slirp4netns(string commandLine)
    {
        string reference = SlirpImplementation.Require(SlirpImplementation.Reference);
        string ours = SlirpImplementation.Require(SlirpImplementation.Beemesh);
        using Process guest = HostCommand.Start("unshare", ["--user", "--map-root-user", "--net", "--fork", "sleep", "600"], out _, out _);
        try
        {
            int pid = await WaitForChildAsync(guest.Id);
            string[] args = commandLine.Replace("{PID}", pid.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
                .Split(' ');

            Outcome expected = await RunAsync(reference, args);
            Outcome actual = await RunAsync(ours, args);

            output.WriteLine($"slirp4netns: {expected}\nbeemesh-slirp: {actual}");
            Assert.Equal(expected.Ready, actual.Ready);
            Assert.Equal(expected.ExitCode, actual.ExitCode);
            Assert.DoesNotContain("Unhandled", actual.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", actual.Stderr, StringComparison.Ordinal);
            if (!actual.Ready && actual.ExitCode != 0)
            {
                string[] lines = actual.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.True(lines.Length == 1, $"expected one error line, got: {actual.Stderr}");
            }
        }
        finally
        {
            HostCommand.Kill(guest);
        }
    }

    /// <summary>
    /// Starts the implementation with <c>-r 3</c> (fd 3 = its stdout, its own stdout discarded) and
    /// waits for "1" or its exit; a ready implementation is then stopped.
    /// </summary>
    private static async Task<Outcome> RunAsync(string binary, string[] args)
    {
        var script = new StringBuilder("exec \"$0\" -r 3");
        for (int i = 0; i < args.Length; i++)
        {
            script.Append(" \"${").Append(i + 1).Append("}\"");
        }

        script.Append(" 3>&1 >/dev/null");
        using Process p = HostCommand.Start("bash", ["-c", script.ToString(), binary, .. args], out StringBuilder stdout, out StringBuilder stderr);
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        bool ready = false;
        try
        {
            while (!p.HasExited)
            {
                lock (stdout)
                {
                    ready = stdout.ToString().Contains('1', StringComparison.Ordinal);
                }

                if (ready)
                {
                    break;
                }

                await Task.Delay(20, limit.Token);
            }
        }
        catch (OperationCanceledException)
        {
            HostCommand.Kill(p);
            throw new Xunit.Sdk.XunitException($"{binary} {string.Join(' ', args)}: neither ready nor exited in 30 s");
        }

        if (ready)
        {
            HostCommand.Kill(p);
            return new Outcome(true, 0, "");
        }

        // Exited: WaitForExit() drains the output readers, so a "1" written just before exit is seen.
        p.WaitForExit();
        lock (stdout)
        {
            lock (stderr)
            {
                return new Outcome(stdout.ToString().Contains('1', StringComparison.Ordinal), p.ExitCode, stderr.ToString());
            }
        }
    }

    private static async Task<int> WaitForChildAsync(int pid)
    {
        string children = $"/proc/{pid}/task/{pid}/children";
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            string text = File.Exists(children) ? (await File.ReadAllTextAsync(children, limit.Token)).Trim() : "";
            if (text.Length > 0)
            {
                return int.Parse(text.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            }

            await Task.Delay(10, limit.Token);
        }
    }
}
