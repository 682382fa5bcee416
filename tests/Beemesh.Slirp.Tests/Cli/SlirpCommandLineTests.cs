using System.Net;
using System.Net.Sockets;
using Beemesh.Slirp.Cli;

namespace Beemesh.Slirp.Tests.Cli;

public sealed class SlirpCommandLineTests
{
    private static readonly SlirpCommandLineEnvironment Env = new(
        path => path.StartsWith("/exists", StringComparison.Ordinal) ? 0 : 2,
        (name, family) => name == "eth9"
            ? (family == AddressFamily.InterNetwork ? IPAddress.Parse("192.0.2.7") : IPAddress.Parse("2001:db8::7"))
            : null,
        posixlyCorrect: false);

    private static SlirpOptions Run(params string[] args)
    {
        SlirpParseResult result = SlirpCommandLine.Parse(args, "beemesh-slirp", Env);
        Assert.True(result.Outcome == SlirpParseOutcome.Run, result.StandardError + result.StandardOutput);
        return result.Options!;
    }

    [Fact]
    public void Defaults_MatchSlirp4netns()
    {
        SlirpOptions o = Run("1234", "tap0");

        Assert.Equal(1234, o.TargetPid);
        Assert.Equal("tap0", o.TapName);
        Assert.Equal(1500, o.Mtu);
        Assert.Equal("10.0.2.0/24", o.Cidr);
        Assert.Equal(IPAddress.Parse("10.0.2.2"), o.Gateway);
        Assert.Equal(IPAddress.Parse("10.0.2.3"), o.Dns);
        Assert.Equal(IPAddress.Parse("10.0.2.15"), o.DhcpStart);
        Assert.Equal(IPAddress.Parse("10.0.2.100"), o.Guest);
        Assert.Equal(IPAddress.Parse("255.255.255.0"), o.Netmask);
        Assert.Equal(IPAddress.Parse("fd00::2"), o.Ipv6Gateway);
        Assert.Equal(IPAddress.Parse("fd00::3"), o.Ipv6Dns);
        Assert.Null(o.ExitFd);
        Assert.Null(o.ReadyFd);
        Assert.False(o.Configure);
        Assert.Equal(SlirpNetnsType.Pid, o.NetnsType);
        Assert.Equal(SlirpTargetType.Netns, o.TargetType);
    }

    [Fact]
    public void PodmanCommandLine_Parses()
    {
        SlirpOptions o = Run("--disable-host-loopback", "--mtu=65520", "--enable-sandbox", "--enable-seccomp",
            "--cidr=10.41.0.0/16", "--enable-ipv6", "-c", "-e", "3", "-r", "4", "--api-socket", "/tmp/x.net",
            "--netns-type=path", "/exists/netns", "tap0");

        Assert.True(o.DisableHostLoopback && o.EnableSandbox && o.EnableSeccomp && o.EnableIpv6 && o.Configure);
        Assert.Equal(65520, o.Mtu);
        Assert.Equal(3, o.ExitFd);
        Assert.Equal(4, o.ReadyFd);
        Assert.Equal("/tmp/x.net", o.ApiSocket);
        Assert.Equal(SlirpNetnsType.Path, o.NetnsType);
        Assert.Equal("/exists/netns", o.NetnsPath);
        Assert.Null(o.TargetPid);
        Assert.Equal(IPAddress.Parse("10.41.0.2"), o.Gateway);
        Assert.Equal(IPAddress.Parse("10.41.0.100"), o.Guest);
        Assert.Equal(16, o.PrefixLength);
    }

    [Theory]
    [InlineData(new[] { "-c6m1400", "1", "t" }, 1400)]
    [InlineData(new[] { "-m", "1400", "1", "t" }, 1400)]
    [InlineData(new[] { "1", "-m1400", "t" }, 1400)]
    [InlineData(new[] { "--mtu", "1400", "1", "t" }, 1400)]
    [InlineData(new[] { "--mt=1400", "1", "t" }, 1400)]
    [InlineData(new[] { "--mtu=+1400", "1", "t" }, 1400)]
    [InlineData(new[] { "--mtu=-4294965796", "1", "t" }, 1500)]
    public void Mtu_Forms(string[] args, int mtu) => Assert.Equal(mtu, Run(args).Mtu);

    [Fact]
    public void Operands_ArePermutedAndDoubleDashEndsOptions()
    {
        SlirpOptions o = Run("7", "--configure", "--", "-weird-tap");

        Assert.Equal(7, o.TargetPid);
        Assert.Equal("-weird-tap", o.TapName);
        Assert.True(o.Configure);
    }

    [Fact]
    public void PosixlyCorrect_StopsAtFirstOperand()
    {
        var env = new SlirpCommandLineEnvironment(_ => 0, (_, _) => null, posixlyCorrect: true);

        SlirpParseResult result = SlirpCommandLine.Parse(["7", "tap0", "-c"], "p", env);

        Assert.Equal(SlirpParseOutcome.Run, result.Outcome);
        Assert.False(result.Options!.Configure);
        Assert.Equal("WARNING: too many arguments\n", result.StandardOutput);
    }

    [Fact]
    public void TooManyOperands_OnlyWarns()
    {
        SlirpParseResult result = SlirpCommandLine.Parse(["7", "tap0", "extra"], "p", Env);

        Assert.Equal(SlirpParseOutcome.Run, result.Outcome);
        Assert.Equal("WARNING: too many arguments\n", result.StandardOutput);
    }

    [Theory]
    [InlineData("aa:bb:cc:dd:ee:ff", new byte[] { 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff })]
    [InlineData("0x1:2:3:4:5:6", new byte[] { 1, 2, 3, 4, 5, 6 })]
    [InlineData("aa:bb", new byte[] { 0xaa, 0xbb, 0, 0, 0, 0 })]
    [InlineData("100000000:1", new byte[] { 0, 1, 0, 0, 0, 0 })]
    public void MacAddress_ReadLikeSlirp4netns(string text, byte[] expected) =>
        Assert.Equal(expected, Run("-c", "--macaddress", text, "1", "t").MacAddress);

    [Fact]
    public void OutboundAddresses_ResolveLiteralsAndInterfaces()
    {
        Assert.Equal(IPAddress.Parse("198.51.100.1"), Run("--outbound-addr=198.51.100.1", "1", "t").OutboundAddr);
        Assert.Equal(IPAddress.Parse("192.0.2.7"), Run("--outbound-addr=eth9", "1", "t").OutboundAddr);
        Assert.Equal(IPAddress.Parse("2001:db8::1"), Run("--outbound-addr6=2001:db8::1", "1", "t").OutboundAddr6);

        // slirp4netns resolves an --outbound-addr6 interface under the --outbound-addr name.
        SlirpOptions both = Run("--outbound-addr=eth9", "--outbound-addr6=eth9", "1", "t");
        Assert.Equal(IPAddress.Parse("2001:db8::7"), both.OutboundAddr6);
        SlirpParseResult alone = SlirpCommandLine.Parse(["--outbound-addr6=eth9", "1", "t"], "p", Env);
        Assert.Equal("outbound-addr has to be valid ipv4 address or iterface name.", alone.StandardError);
    }

    [Fact]
    public void Bess_ParsesButIsMarked()
    {
        SlirpParseResult result = SlirpCommandLine.Parse(["--target-type=bess", "/tmp/bess.sock"], "p", Env);

        Assert.Equal(SlirpParseOutcome.Run, result.Outcome);
        Assert.Equal(SlirpTargetType.Bess, result.Options!.TargetType);
        Assert.Equal("/tmp/bess.sock", result.Options.Target);
        Assert.Equal("WARNING: BESS mode is experimental\n", result.StandardOutput);
    }

    [Fact]
    public void Errors_UseTheProgramName()
    {
        SlirpParseResult result = SlirpCommandLine.Parse(["--bogus"], "beemesh-slirp", Env);

        Assert.Equal("beemesh-slirp: unrecognized option '--bogus'\n", result.StandardError);
        Assert.StartsWith("Usage: beemesh-slirp [OPTION]... PID|PATH [TAPNAME]\n", result.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(1, result.ExitCode);
    }

    [Fact]
    public void Help_ContainsEveryFlagPodmanAndRootlesskitLookFor()
    {
        string help = SlirpHelpText.Usage("x");
        foreach (string flag in new[] { "--netns-type", "--cidr", "--disable-host-loopback", "--api-socket", "--enable-sandbox",
                     "--enable-seccomp", "--mtu", "--outbound-addr", "--enable-ipv6", "--userns-path" })
        {
            Assert.Contains(flag, help, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("", true, 0L)]
    [InlineData(" 42", true, 42L)]
    [InlineData("42 ", false, 0L)]
    [InlineData("+7", true, 7L)]
    [InlineData("-9223372036854775808", true, long.MinValue)]
    [InlineData("9223372036854775808", false, 0L)]
    [InlineData("x", false, 0L)]
    public void Strtol_FollowsC(string text, bool ok, long value)
    {
        Assert.Equal(ok, CText.TryStrtol(text, out long parsed));
        if (ok)
        {
            Assert.Equal(value, parsed);
        }
    }

    [Theory]
    [InlineData("1.2.3.4", true)]
    [InlineData("255.255.255.255", true)]
    [InlineData("1.2.3.04", false)]
    [InlineData("1.2.3", false)]
    [InlineData("1.2.3.4.5", false)]
    [InlineData("1.2.3.256", false)]
    [InlineData("1..3.4", false)]
    [InlineData("1.2.3.4.", false)]
    [InlineData("0x1.2.3.4", false)]
    [InlineData("", false)]
    public void InetPton4_FollowsGlibc(string text, bool ok) => Assert.Equal(ok, CText.TryParseIpv4(text, out _));
}
