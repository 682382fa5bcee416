using System.Net;
using Beemesh.Netstack.Dns;
using FsCheck.Xunit;

namespace Beemesh.Netstack.Tests.Dns;

public class ResolvConfTests
{
    [Fact]
    public void Parses_systemd_resolved_stub_file()
    {
        const string text = """
            # This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).
            # Do not edit.

            nameserver 127.0.0.53
            options edns0 trust-ad
            search lan example.org
            """;

        ResolvConf conf = ResolvConf.Parse(text);

        Assert.Equal([IPAddress.Parse("127.0.0.53")], conf.Nameservers);
        Assert.Equal([new IPEndPoint(IPAddress.Parse("127.0.0.53"), 53)], conf.Upstreams);
        Assert.Equal(["edns0", "trust-ad"], conf.Options);
        Assert.Equal(["lan", "example.org"], conf.Search);
    }

    [Fact]
    public void Comments_blank_lines_and_trailing_comments_are_ignored()
    {
        const string text = "; semicolon comment\n   # indented comment\n\nnameserver 10.1.1.1 # office\r\nnameserver\t10.1.1.2;second\n";

        ResolvConf conf = ResolvConf.Parse(text);

        Assert.Equal([IPAddress.Parse("10.1.1.1")], conf.Nameservers);
    }

    [Fact]
    public void Ipv6_servers_and_zones_are_kept()
    {
        const string text = "nameserver 2001:db8::53\nnameserver fe80::1%2\nnameserver fe80::2%no-such-interface0\nnameserver ::1\n";

        ResolvConf conf = ResolvConf.Parse(text);

        Assert.Equal(4, conf.Nameservers.Count);
        Assert.Equal(IPAddress.Parse("2001:db8::53"), conf.Nameservers[0]);
        Assert.Equal(2, conf.Nameservers[1].ScopeId);
        Assert.True(conf.Nameservers[1].IsIPv6LinkLocal);
        Assert.Equal(0, conf.Nameservers[2].ScopeId);
        Assert.Equal(IPAddress.IPv6Loopback, conf.Nameservers[3]);
    }

    [Fact]
    public void Named_zone_of_an_existing_interface_resolves_to_its_index()
    {
        ResolvConf conf = ResolvConf.Parse("nameserver fe80::1%lo\n");

        Assert.Single(conf.Nameservers);
        // lo exists in every network namespace; its index is 1 on Linux.
        Assert.Equal(1, conf.Nameservers[0].ScopeId);
    }

    [Fact]
    public void Duplicates_are_kept_once_in_first_seen_order()
    {
        ResolvConf conf = ResolvConf.Parse("nameserver 1.1.1.1\nnameserver 8.8.8.8\nnameserver 1.1.1.1\nnameserver ::1\nnameserver 0:0::1\n");

        Assert.Equal([IPAddress.Parse("1.1.1.1"), IPAddress.Parse("8.8.8.8"), IPAddress.IPv6Loopback], conf.Nameservers);
    }

    [Theory]
    [InlineData("nameserver")]
    [InlineData("nameserver not-an-address")]
    [InlineData("nameserver 1.2.3")]
    [InlineData("nameserver 300.1.1.1")]
    [InlineData("nameserver 1.2.3.4%eth0")]
    [InlineData("nameserver fe80::1%")]
    [InlineData("nameserver 12345")]
    [InlineData("nameserverx 1.2.3.4")]
    [InlineData("NAMESERVER 1.2.3.4")]
    [InlineData("\0\0garbage\u00ff line ::::")]
    public void Garbage_lines_give_no_name_server(string line)
    {
        ResolvConf conf = ResolvConf.Parse(line + "\nsortlist 130.155.160.0/255.255.240.0\n");

        Assert.Empty(conf.Nameservers);
        Assert.Empty(conf.Upstreams);
    }

    [Fact]
    public void Last_search_or_domain_line_wins_and_options_accumulate()
    {
        ResolvConf conf = ResolvConf.Parse("search a.example b.example\ndomain c.example\noptions ndots:2\noptions timeout:1 attempts:3\n");

        Assert.Equal(["c.example"], conf.Search);
        Assert.Equal(["ndots:2", "timeout:1", "attempts:3"], conf.Options);

        Assert.Equal(["d.example"], ResolvConf.Parse("domain c.example\nsearch d.example\n").Search);
    }

    [Fact]
    public void Load_reads_a_file_and_a_missing_file_is_empty()
    {
        string path = Path.Combine(Path.GetTempPath(), $"resolv-{Guid.NewGuid():N}.conf");
        File.WriteAllText(path, "nameserver 192.0.2.53\n");
        try
        {
            Assert.Equal([IPAddress.Parse("192.0.2.53")], ResolvConf.Load(path).Nameservers);
        }
        finally
        {
            File.Delete(path);
        }

        Assert.Empty(ResolvConf.Load(path).Nameservers);
    }

    [Property(MaxTest = 300)]
    public void Any_text_parses_without_throwing(string text)
    {
        ResolvConf conf = ResolvConf.Parse(text ?? string.Empty);

        Assert.Equal(conf.Nameservers.Count, conf.Upstreams.Count);
    }
}
