using System.CommandLine;
using Beemesh.Cli.Commands;

namespace Beemesh.Cli.Tests;

public sealed class InjectCommandTests : IDisposable
{
    private const string Pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: api\n  namespace: shop\nspec:\n  containers:\n  - name: api\n    image: registry.example/api:1\n    ports:\n    - containerPort: 8080\n";

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("beemesh-inject-");

    [Fact]
    public async Task InjectsAFileToStdout()
    {
        string file = Write("pod.yaml", Pod);
        var result = await RunAsync("inject", "-f", file, "--image", "localhost/beemesh:1", "--agent-dir", "/srv/agent");
        Assert.Equal(0, result.Exit);
        Assert.Empty(result.Err);
        Assert.Contains("- name: beemesh-sidecar\n", result.Out, StringComparison.Ordinal);
        Assert.Contains("image: localhost/beemesh:1\n", result.Out, StringComparison.Ordinal);
        Assert.Contains("path: /srv/agent\n", result.Out, StringComparison.Ordinal);
        Assert.Contains("beemesh.io/injected: ", result.Out, StringComparison.Ordinal);

        // The output is accepted as input and comes back unchanged.
        string again = Write("again.yaml", result.Out);
        var twice = await RunAsync("inject", "-f", again, "--image", "localhost/beemesh:1", "--agent-dir", "/srv/agent");
        Assert.Equal(result.Out, twice.Out);
    }

    [Fact]
    public async Task InvalidYamlGetsOneLineWithThePositionAndExitTwo()
    {
        string file = Write("bad.yaml", Pod + "  - name: [unclosed\n");
        var result = await RunAsync("inject", "-f", file);
        Assert.Equal(2, result.Exit);
        Assert.Empty(result.Out);
        Assert.StartsWith($"beemesh inject: {file}:13:", result.Err, StringComparison.Ordinal);
        Assert.Contains("YAML syntax error", result.Err, StringComparison.Ordinal);
        Assert.Single(result.Err.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public async Task WrongFieldTypeGetsItsLine()
    {
        string file = Write("type.yaml", Pod.Replace("containerPort: 8080", "containerPort: [8080]", StringComparison.Ordinal));
        var result = await RunAsync("inject", "-f", file);
        Assert.Equal(2, result.Exit);
        Assert.StartsWith($"beemesh inject: {file}:11:", result.Err, StringComparison.Ordinal);
        Assert.Contains("Pod api: spec.containers[0].ports[0].containerPort", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingFileAndBadOptionsAreRefused()
    {
        var missing = await RunAsync("inject", "-f", Path.Combine(_dir.FullName, "nope.yaml"));
        Assert.Equal(1, missing.Exit);
        Assert.StartsWith("beemesh inject: cannot read ", missing.Err, StringComparison.Ordinal);

        string file = Write("pod.yaml", Pod);
        var port = await RunAsync("inject", "-f", file, "--inbound", "70000");
        Assert.Equal(2, port.Exit);
        Assert.Equal("beemesh inject: invalid inbound port 70000: ports are 1-65535\n", port.Err);

        var collision = await RunAsync("inject", "-f", file, "--inbound", "8080");
        Assert.Equal(2, collision.Exit);
        Assert.Contains("container api declares port 8080, the sidecar's inbound port", collision.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownFlagIsRefused()
    {
        string file = Write("pod.yaml", Pod);
        var result = await RunAsync("inject", "-f", file, "--no-such-flag");
        Assert.NotEqual(0, result.Exit);
        Assert.Contains("--no-such-flag", result.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("beemesh-sidecar", result.Out, StringComparison.Ordinal);

        var noFile = await RunAsync("inject");
        Assert.NotEqual(0, noFile.Exit);
        Assert.Contains("--filename", noFile.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--dns", "127.0.0.1:99999", "invalid --dns '127.0.0.1:99999'")]
    [InlineData("--dns", "resolver", "invalid --dns 'resolver'")]
    [InlineData("--dns-upstream", "10.0.2.3", "--dns-upstream needs --dns")]
    [InlineData("--node-loopback", "gateway", "invalid --node-loopback 'gateway'")]
    public async Task SidecarRefusesBadDnsArgumentsBeforeCallingTheAgent(string option, string value, string message)
    {
        // The agent directory does not exist: a refusal that names the argument came before any call.
        string missing = Path.Combine(_dir.FullName, "no-agent");
        var result = await RunAsync("sidecar", "--name", "api", "--inbound", "15006", "--agent", missing, option, value);
        Assert.Equal(2, result.Exit);
        Assert.Contains(message, result.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("cannot join the mesh", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SidecarWithDnsAndAValidUpstreamGoesOnToTheAgent()
    {
        string missing = Path.Combine(_dir.FullName, "no-agent");
        var result = await RunAsync("sidecar", "--name", "api", "--inbound", "15006", "--agent", missing, "--dns", "127.0.0.1:53", "--dns-upstream", "[::1]:5353");
        Assert.Equal(1, result.Exit);
        Assert.Contains($"cannot join the mesh through the agent at {missing}", result.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("fast")]
    [InlineData("0")]
    [InlineData("1,2,3")]
    [InlineData("10,")]
    public async Task SidecarRefusesABadTunnelKeepAliveAsAUsageErrorBeforeCallingTheAgent(string value)
    {
        string missing = Path.Combine(_dir.FullName, "no-agent");
        var environment = new Dictionary<string, string> { [Beemesh.Agent.Client.TunnelKeepAlive.Variable] = value };
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };
        var root = new RootCommand("test") { SidecarCommand.Create(environment.GetValueOrDefault) };
        int exit = await root.Parse(["sidecar", "--name", "api", "--inbound", "15006", "--agent", missing])
            .InvokeAsync(new InvocationConfiguration { Output = output, Error = error });

        Assert.Equal(2, exit);
        // One line that names the variable and its value; the agent was never called.
        Assert.Equal($"beemesh sidecar: BEEMESH_TUNNEL_KEEPALIVE={value}: expected INTERVAL[,TIMEOUT] in seconds between 0.1 and 3600 (e.g. 10,10), or off\n", error.ToString());
        Assert.Empty(output.ToString());
    }

    [Theory]
    [InlineData("1,1")]
    [InlineData("off")]
    [InlineData("")]
    public async Task SidecarWithAValidTunnelKeepAliveGoesOnToTheAgent(string value)
    {
        string missing = Path.Combine(_dir.FullName, "no-agent");
        var environment = new Dictionary<string, string> { [Beemesh.Agent.Client.TunnelKeepAlive.Variable] = value };
        var error = new StringWriter { NewLine = "\n" };
        var root = new RootCommand("test") { SidecarCommand.Create(environment.GetValueOrDefault) };
        int exit = await root.Parse(["sidecar", "--name", "api", "--inbound", "15006", "--agent", missing])
            .InvokeAsync(new InvocationConfiguration { Output = new StringWriter(), Error = error });

        Assert.Equal(1, exit);
        Assert.Contains($"cannot join the mesh through the agent at {missing}", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void DnsUpstreamIsTheFirstResolverOfResolvConfThatIsNotTheSidecarItself()
    {
        var listen = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 53);
        var conf = Beemesh.Netstack.Dns.ResolvConf.Parse("nameserver 127.0.0.1\nnameserver 10.0.2.3\nnameserver 10.96.0.10\n");
        Assert.Equal("10.0.2.3:53", SidecarCommand.DnsUpstream(listen, null, conf)!.ToString());

        var explicitUpstream = System.Net.IPEndPoint.Parse("192.0.2.1:5353");
        Assert.Same(explicitUpstream, SidecarCommand.DnsUpstream(listen, explicitUpstream, conf));

        // Listening on another port, 127.0.0.1:53 is a resolver of its own.
        Assert.Equal("127.0.0.1:53", SidecarCommand.DnsUpstream(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 5353), null, conf)!.ToString());

        Assert.Null(SidecarCommand.DnsUpstream(listen, null, Beemesh.Netstack.Dns.ResolvConf.Parse("nameserver 127.0.0.1\n")));
        Assert.Null(SidecarCommand.DnsUpstream(listen, null, Beemesh.Netstack.Dns.ResolvConf.Empty));
    }

    public void Dispose() => _dir.Delete(recursive: true);

    private string Write(string name, string text)
    {
        string path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };
        var root = new RootCommand("test") { InjectCommand.Create(), SidecarCommand.Create() };
        int exit = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }
}
