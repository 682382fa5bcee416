using System.CommandLine;
using Beemesh.Cli.Commands;

namespace Beemesh.Cli.Tests;

public sealed class SidecarExecutableTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("beemesh-sidecar-exe-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void The_sidecar_executable_is_found_only_beside_the_cli()
    {
        string cli = Path.Combine(_dir.FullName, "beemesh");
        Assert.Null(SidecarExecutable.Find(null));
        Assert.Null(SidecarExecutable.Find("beemesh"));
        Assert.Null(SidecarExecutable.Find(cli));

        string sidecar = Path.Combine(_dir.FullName, SidecarExecutable.FileName);
        File.WriteAllText(sidecar, string.Empty);
        Assert.Equal(sidecar, SidecarExecutable.Find(cli));
    }

    [Fact]
    public async Task Without_the_executable_the_command_runs_in_this_process_after_the_cli_parsed_it()
    {
        // The test host has no beemesh-sidecar beside it: the command's own action answers.
        Assert.Null(SidecarExecutable.Find(Environment.ProcessPath));
        string[] args = ["sidecar", "--name", "web", "--inbound", "0"];
        var error = new StringWriter { NewLine = "\n" };
        var root = new RootCommand("test") { SidecarExecutable.Delegate(SidecarCommand.Create(), args) };
        int exit = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = new StringWriter(), Error = error });
        Assert.Equal(2, exit);
        Assert.Contains("beemesh sidecar: invalid --inbound 0", error.ToString(), StringComparison.Ordinal);

        // A usage error is the CLI's own and never reaches the action.
        error = new StringWriter { NewLine = "\n" };
        exit = await root.Parse(["sidecar", "--inbound", "15006"]).InvokeAsync(new InvocationConfiguration { Output = new StringWriter(), Error = error });
        Assert.Equal(1, exit);
        Assert.Contains("--name", error.ToString(), StringComparison.Ordinal);
    }
}
