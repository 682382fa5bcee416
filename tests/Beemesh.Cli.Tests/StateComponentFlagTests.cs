using System.CommandLine;
using Beemesh.Cli.Commands;

namespace Beemesh.Cli.Tests;

/// <summary>
/// <c>--resources-path</c> (alias <c>--components-path</c>) and <c>--state</c> of <c>beemesh run</c> and
/// <c>beemesh sidecar</c>: a refused component file is one line and exit 2, before anything is started.
/// </summary>
public sealed class StateComponentFlagTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("beemesh-cli-components-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string yaml)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, yaml);
        return path;
    }

    private static string Component(string name, string type = "state.beemesh", string consistency = "strong", string extra = "") =>
        $"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {type}\n  version: v1\n  metadata:\n  - name: consistency\n    value: {consistency}\n{extra}";

    public static TheoryData<string, string, string> Refusals => new()
    {
        { "redis.yaml", Component("cache", type: "state.redis"), "type 'state.redis' is not served: Beemesh serves only state.beemesh" },
        { "linear.yaml", Component("ledger", consistency: "linear"), "unknown consistency 'linear' (expected strong or eventual)" },
        { "scoped.yaml", Component("ledger", extra: "scopes: [web]\n"), "no state.beemesh component for app api in namespace default; skipped: ledger (scopes web)" },
        { "twice.yaml", Component("ledger") + "---\n" + Component("ledger", consistency: "eventual"), "state store ledger is already declared by" },
        { "broken.yaml", "apiVersion: [dapr.io/v1alpha1\n", "YAML syntax error" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task RunRefusesABadComponentFileWithOneLine(string file, string yaml, string reason)
    {
        string path = Write(file, yaml);
        var result = await RunAsync("run", "--name", "api", "--agent", Path.Combine(_dir, "no-agent"), "--resources-path", path, "--", "true");
        Assert.Equal(2, result.Exit);
        string line = Assert.Single(result.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.Contains(reason, StringComparison.Ordinal));
        Assert.StartsWith($"beemesh run: {path}", line, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task SidecarRefusesABadComponentFileWithOneLine(string file, string yaml, string reason)
    {
        string path = Write(file, yaml);
        var result = await RunAsync("sidecar", "--name", "api", "--inbound", "15008", "--agent", Path.Combine(_dir, "no-agent"), "--components-path", path);
        Assert.Equal(2, result.Exit);
        Assert.Contains($"beemesh sidecar: {path}", result.Err, StringComparison.Ordinal);
        Assert.Contains(reason, result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DaprsOlderFlagNameIsAnAlias()
    {
        string path = Write("redis.yaml", Component("cache", type: "state.redis"));
        var result = await RunAsync("run", "--name", "api", "--components-path", path, "--", "true");
        Assert.Equal(2, result.Exit);
        Assert.Contains("type 'state.redis' is not served", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AStoreInAFlagAndAFileIsRefused()
    {
        string path = Write("ledger.yaml", Component("ledger"));
        var result = await RunAsync("run", "--name", "api", "--state", "ledger=eventual", "--resources-path", _dir, "--", "true");
        Assert.Equal(2, result.Exit);
        Assert.Contains($"beemesh run: {path}:1:1: state store ledger is already declared by --state ledger=eventual", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunNeedsANameForComponents()
    {
        string path = Write("ledger.yaml", Component("ledger"));
        var result = await RunAsync("run", "--resources-path", path, "--", "true");
        Assert.Equal(2, result.Exit);
        Assert.Contains("beemesh run: --resources-path needs --name", result.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("pod")]
    public async Task SidecarRefusesAStateAddressOtherPodsCannotDial(string address)
    {
        var result = await RunAsync("sidecar", "--name", "api", "--inbound", "15008", "--agent", Path.Combine(_dir, "no-agent"), "--state-address", address);
        Assert.Equal(2, result.Exit);
        Assert.Contains($"beemesh sidecar: invalid --state-address '{address}'", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SidecarAcceptsAGoodFileAndGoesOnToTheAgent()
    {
        string path = Write("ledger.yaml", Component("ledger", extra: "scopes: [api]\n"));
        Write("other.yaml", Component("cache", extra: "scopes: [web]\n"));
        var result = await RunAsync("sidecar", "--name", "api", "--inbound", "15008", "--agent", Path.Combine(_dir, "no-agent"), "--resources-path", _dir);
        // Past the flags: it fails only at joining the mesh (there is no agent).
        Assert.Equal(1, result.Exit);
        Assert.Contains("cannot join the mesh through the agent", result.Err, StringComparison.Ordinal);
        Assert.Contains("component cache is scoped to web, not api: skipped", result.Err, StringComparison.Ordinal);
        Assert.DoesNotContain(path, result.Err, StringComparison.Ordinal);
    }

    private static RootCommand Root() => new("test") { RunCommand.Create(), SidecarCommand.Create() };

    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };
        int exit = await Root().Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }
}
