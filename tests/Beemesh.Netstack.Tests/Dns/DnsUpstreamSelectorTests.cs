using System.Net;
using Beemesh.Netstack.Dns;

namespace Beemesh.Netstack.Tests.Dns;

public class DnsUpstreamSelectorTests
{
    private static IPEndPoint Ep(string text) => IPEndPoint.Parse(text);

    [Fact]
    public void First_usable_name_server_in_file_order_wins_and_loopback_is_usable()
    {
        ResolvConf conf = ResolvConf.Parse("nameserver 0.0.0.0\nnameserver 127.0.0.53\nnameserver 8.8.8.8\n");

        Assert.Equal(Ep("127.0.0.53:53"), DnsUpstreamSelector.Select(conf));
        Assert.Equal([Ep("127.0.0.53:53"), Ep("8.8.8.8:53")], DnsUpstreamSelector.SelectAll(conf));
    }

    [Fact]
    public void Ipv6_first_is_taken_in_file_order()
    {
        ResolvConf conf = ResolvConf.Parse("nameserver 2001:db8::1\nnameserver 192.0.2.1\n");

        Assert.Equal(Ep("[2001:db8::1]:53"), DnsUpstreamSelector.Select(conf));
    }

    [Fact]
    public void Unusable_servers_are_skipped_and_the_fallback_is_glibcs_loopback()
    {
        ResolvConf conf = ResolvConf.Parse("nameserver ::\nnameserver 224.0.0.251\nnameserver 255.255.255.255\nnameserver fe80::1%no-such-if9\nnameserver ff02::fb\n");

        Assert.Equal(Ep("127.0.0.1:53"), DnsUpstreamSelector.Select(conf));
        Assert.Equal([Ep("127.0.0.1:53")], DnsUpstreamSelector.SelectAll(conf));
        Assert.Equal(Ep("127.0.0.1:53"), DnsUpstreamSelector.Select(ResolvConf.Empty));
    }

    [Fact]
    public void Link_local_with_a_zone_is_usable()
    {
        IPEndPoint chosen = DnsUpstreamSelector.Select(ResolvConf.Parse("nameserver fe80::1%3\n"));

        Assert.Equal(3, chosen.Address.ScopeId);
    }

    [Fact]
    public void Explicit_endpoint_beats_environment_which_beats_the_file()
    {
        ResolvConf conf = ResolvConf.Parse("nameserver 192.0.2.1\n");

        Assert.Equal(Ep("127.0.0.1:5300"), DnsUpstreamSelector.Select(conf, Ep("127.0.0.1:5300"), "127.0.0.1:5353"));
        Assert.Equal(Ep("127.0.0.1:5353"), DnsUpstreamSelector.Select(conf, null, "127.0.0.1:5353"));
        Assert.Equal(Ep("192.0.2.1:53"), DnsUpstreamSelector.Select(conf, null, "  "));
    }

    [Theory]
    [InlineData("127.0.0.1:5353", "127.0.0.1:5353")]
    [InlineData(" 127.0.0.1 ", "127.0.0.1:53")]
    [InlineData("[::1]:5353", "[::1]:5353")]
    [InlineData("::1", "[::1]:53")]
    [InlineData("[fe80::1%7]:53", "[fe80::1%7]:53")]
    public void Override_forms_parse(string text, string expected)
    {
        Assert.True(DnsUpstreamSelector.TryParseEndPoint(text, out IPEndPoint? endPoint));
        Assert.Equal(Ep(expected), endPoint);
    }

    [Theory]
    [InlineData("localhost:53")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:65536")]
    [InlineData("127.0.0.1:-1")]
    [InlineData("::1:5353x")]
    [InlineData("[127.0.0.1]:53")]
    [InlineData("")]
    public void Bad_override_forms_are_refused(string text)
    {
        Assert.False(DnsUpstreamSelector.TryParseEndPoint(text, out _));
    }

    [Fact]
    public void Bad_environment_override_is_a_one_line_format_error()
    {
        var e = Assert.Throws<FormatException>(() => DnsUpstreamSelector.Select(ResolvConf.Empty, null, "nope"));

        Assert.Contains(DnsUpstreamSelector.OverrideVariable, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Environment_variable_is_read_by_SelectFromEnvironment()
    {
        string? saved = Environment.GetEnvironmentVariable(DnsUpstreamSelector.OverrideVariable);
        try
        {
            Environment.SetEnvironmentVariable(DnsUpstreamSelector.OverrideVariable, "127.0.0.1:5353");
            Assert.Equal(Ep("127.0.0.1:5353"), DnsUpstreamSelector.SelectFromEnvironment("/nonexistent/resolv.conf"));

            Environment.SetEnvironmentVariable(DnsUpstreamSelector.OverrideVariable, null);
            Assert.Equal(Ep("127.0.0.1:53"), DnsUpstreamSelector.SelectFromEnvironment("/nonexistent/resolv.conf"));
        }
        finally
        {
            Environment.SetEnvironmentVariable(DnsUpstreamSelector.OverrideVariable, saved);
        }
    }

    [Fact]
    public void Ipv4_mapped_addresses_are_judged_as_ipv4()
    {
        Assert.False(DnsUpstreamSelector.IsUsable(IPAddress.Parse("::ffff:0.0.0.0")));
        Assert.True(DnsUpstreamSelector.IsUsable(IPAddress.Parse("::ffff:127.0.0.1")));
    }
}
