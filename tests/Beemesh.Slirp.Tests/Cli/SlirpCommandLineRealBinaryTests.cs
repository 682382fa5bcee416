using System.Diagnostics;
using Beemesh.Slirp.Cli;

namespace Beemesh.Slirp.Tests.Cli;

/// <summary>
/// Runs the real slirp4netns with command lines it rejects before touching any namespace, and checks
/// that our parser prints the same stdout and stderr and exits with the same code.
/// </summary>
public sealed class SlirpCommandLineRealBinaryTests
{
    private const string RealBinary = "/usr/bin/slirp4netns";

    // Every case must fail before slirp4netns forks: a passing command line would make it enter a namespace.
    public static TheoryData<string[]> RejectedCommandLines() => new()
    {
        Array.Empty<string>(),
        new[] { "1" },
        new[] { "--foo" },
        new[] { "--foo=bar", "1", "tap0" },
        new[] { "-x" },
        new[] { "-cx" },
        new[] { "-c-" },
        new[] { "-e" },
        new[] { "1", "tap0", "-m" },
        new[] { "--mtu" },
        new[] { "--configure=1" },
        new[] { "--dis" },
        new[] { "--e" },
        new[] { "--c", "1", "tap0" },
        new[] { "--=x" },
        new[] { "--out=1.2.3.4", "1", "tap0" },
        new[] { "-m", "0", "1", "t" },
        new[] { "-m", "65522", "1", "t" },
        new[] { "-m", "-1", "1", "t" },
        new[] { "-m", "abc" },
        new[] { "-m1500x" },
        new[] { "--mtu=", "1", "t" },
        new[] { "--mtu", " 1500 ", "1", "t" },
        new[] { "-e", "-1" },
        new[] { "-e", "" , "-m", "0" },
        new[] { "-e", "99999999999999999999" },
        new[] { "-r", "x" },
        new[] { "--ready-fd", "3.0" },
        new[] { "abc", "tap0" },
        new[] { "0", "tap0" },
        new[] { "-5", "tap0" },
        new[] { "", "tap0" },
        new[] { "-6", "1" },
        new[] { "-6c", "--enable-seccomp", "--outbound-addr=1.2.3.4", "1" },
        new[] { "--no-host-loopback", "--create-sandbox", "1" },
        new[] { "--target-type=bess", "1", "2" },
        new[] { "--target-type=bess" },
        new[] { "-c", "--target-type=bess", "1" },
        new[] { "--netns-type=path", "--target-type=bess", "1" },
        new[] { "--target-type=foo", "1", "t" },
        new[] { "--macaddress=aa:bb:cc:dd:ee:ff", "1", "t" },
        new[] { "--userns-path=/nonexistent/x", "1", "t" },
        new[] { "--netns-type=path", "/nonexistent/x", "t" },
        new[] { "--netns-type=foo", "/nonexistent/y", "t" },
        new[] { "--cidr=10.0.2.1/24", "1", "t" },
        new[] { "--cidr", "1.2.3.4/26", "1", "t" },
        new[] { "--cidr", "10.0.0.0/0", "1", "t" },
        new[] { "--cidr", "1.2.3/24", "1", "t" },
        new[] { "--cidr", "1.2.3.0/240", "1", "t" },
        new[] { "--cidr", "300.1.1.0/24", "1", "t" },
        new[] { "--cidr", "10.00.2.0/24", "1", "t" },
        new[] { "--cidr", "", "1", "t" },
        new[] { "-c", "--macaddress=zz", "1", "t" },
        new[] { "-c", "--macaddress=aa:bb:cc:dd:ee:ff:11", "1", "t" },
        new[] { "-c", "--macaddress=aa::cc", "1", "t" },
        new[] { "-c", "--macaddress=aa:bb:cc:dd:ee:", "1", "t" },
        new[] { "-c", "--macaddress=1ff:bb", "1", "t" },
        new[] { "-c", "--macaddress=-1", "1", "t" },
        new[] { "--outbound-addr=no-such-interface0", "1", "t" },
        new[] { "--outbound-addr6=no-such-interface0", "1", "t" },
        new[] { "--outbound-addr=1.2.3.04", "1", "t" },
        new[] { "1", "t", "extra", "--cidr=1.1.1.1/8" },
        new[] { "--", "-c", "t" },
        new[] { "-m", "1400", "abc", "--", "-c" },
        new[] { "-h" },
        new[] { "--help" },
        new[] { "--he" },
        new[] { "-6", "-h" },
        new[] { "-ch", "-x" },
        new[] { "-x", "-h" },
        new[] { "-m", "0", "-h" },
        new[] { "--help=1" },
    };

    [SkippableTheory]
    [MemberData(nameof(RejectedCommandLines))]
    public void Parse_MatchesRealSlirp4netns(string[] args)
    {
        Skip.IfNot(File.Exists(RealBinary), "slirp4netns is not installed");
        (string stdout, string stderr, int exitCode) = RunReal(args);

        SlirpParseResult ours = SlirpCommandLine.Parse(args, RealBinary);

        Assert.Equal(stderr, ours.StandardError);
        Assert.Equal(stdout, ours.StandardOutput);
        Assert.Equal(exitCode, ours.ExitCode);
        Assert.NotEqual(SlirpParseOutcome.Run, ours.Outcome);
    }

    [SkippableFact]
    public void Help_IsTheRealHelpWithOurProgramName()
    {
        Skip.IfNot(File.Exists(RealBinary), "slirp4netns is not installed");
        (string stdout, _, _) = RunReal(["--help"]);

        string ours = SlirpHelpText.Usage("beemesh-slirp");

        Assert.Equal(stdout.Replace("Usage: " + RealBinary, "Usage: beemesh-slirp", StringComparison.Ordinal), ours);
    }

    [SkippableFact]
    public void Version_HasTheSameLineKeysAsTheRealVersion()
    {
        Skip.IfNot(File.Exists(RealBinary), "slirp4netns is not installed");
        (string stdout, _, _) = RunReal(["--version"]);
        string[] realKeys = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(l => l[..l.IndexOf(':')]).Where(k => k != "libseccomp").ToArray();

        string[] ourLines = SlirpHelpText.Version().Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.StartsWith("beemesh-slirp version ", ourLines[0], StringComparison.Ordinal);
        Assert.Equal(realKeys, ourLines.Skip(1).Select(l => l[..l.IndexOf(':')]).ToArray());
        Assert.Contains("SLIRP_CONFIG_VERSION_MAX: 4", ourLines);
    }

    private static (string Stdout, string Stderr, int ExitCode) RunReal(string[] args)
    {
        var start = new ProcessStartInfo(RealBinary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Remove("POSIXLY_CORRECT");
        using Process process = Process.Start(start)!;
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(10_000))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException("slirp4netns did not exit: the case would have started it");
        }

        return (stdout.Result, stderr.Result, process.ExitCode);
    }
}
