using System.Diagnostics;

namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// A <c>beemesh agent</c> in a private state directory for one test class, with the CLI calls the
/// mesh tests make against it (policies, the arguments of a named <c>beemesh run</c>).
/// </summary>
public sealed class MeshAgentProcess : IAsyncDisposable
{
    private readonly Process _process;

    private MeshAgentProcess(string directory, Process process)
    {
        Directory = directory;
        _process = process;
    }

    /// <summary>The agent's state directory (admin.sock, agent.sock).</summary>
    public string Directory { get; }

    /// <summary>Starts an agent with <paramref name="extraArguments"/>; null when the binaries are not built or the user is not root.</summary>
    public static async Task<MeshAgentProcess?> StartAsync(params string[] extraArguments)
    {
        if (BeemeshEnvironment.BinDirectory is null || Environment.UserName != "root")
        {
            return null;
        }

        string directory = System.IO.Directory.CreateTempSubdirectory("beemesh-agent-").FullName;
        var psi = new ProcessStartInfo(BeemeshEnvironment.BeemeshPath) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "agent", "--state-dir", directory }.Concat(extraArguments))
        {
            psi.ArgumentList.Add(a);
        }

        var agent = new MeshAgentProcess(directory, Process.Start(psi)!);
        for (int i = 0; i < 100 && !File.Exists(Path.Combine(directory, "admin.sock")); i++)
        {
            await Task.Delay(100);
        }

        return agent;
    }

    /// <summary>The <c>beemesh run</c> arguments for workload <paramref name="name"/> serving <paramref name="ports"/>.</summary>
    public string[] Workload(string name, params string[] ports) =>
        ["--agent", Directory, "--name", name, .. ports.SelectMany(p => new[] { "--port", p })];

    /// <summary>Runs <c>beemesh policy apply -f</c> on <paramref name="yaml"/>; returns its exit code and output.</summary>
    public async Task<(int Code, string Output)> ApplyPolicyAsync(string yaml)
    {
        string file = Path.Combine(Directory, $"policy-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(file, yaml);
        var psi = new ProcessStartInfo(BeemeshEnvironment.BeemeshPath) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "policy", "apply", "-f", file, "--agent", Directory })
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        string text = await p.StandardOutput.ReadToEndAsync() + await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, text);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
