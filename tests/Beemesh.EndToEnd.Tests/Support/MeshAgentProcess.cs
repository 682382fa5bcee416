using System.Diagnostics;

namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// A <c>beemesh agent</c> in a private state directory for one test class, with the CLI calls the
/// mesh tests make against it (policies, the arguments of a named <c>beemesh run</c>).
/// </summary>
public sealed class MeshAgentProcess : IAsyncDisposable
{
    private readonly string[] _extraArguments;
    private Process _process;
    private TaskCompletionSource _serving = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private MeshAgentProcess(string directory, string[] extraArguments)
    {
        Directory = directory;
        _process = null!; // set by Launch right after
        _extraArguments = extraArguments;
    }

    /// <summary>The agent's pid.</summary>
    public int ProcessId => _process.Id;

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
        var agent = new MeshAgentProcess(directory, extraArguments);
        agent._process = agent.Launch();
        await agent.WaitUntilServingAsync();
        return agent;
    }

    /// <summary>Kills the agent with SIGKILL (no clean-up of any kind) and waits for it to be gone.</summary>
    public async Task KillHardAsync()
    {
        _process.Kill(entireProcessTree: false);
        await _process.WaitForExitAsync();
    }

    /// <summary>Starts the agent again on the same state directory (after <see cref="KillHardAsync"/>); whether it serves again shows in the next CLI call.</summary>
    public async Task RestartAsync()
    {
        _process.Dispose();
        _process = Launch();
        await WaitUntilServingAsync();
    }

    /// <summary>Runs <c>beemesh ARGS --agent DIR</c>; returns its exit code and output.</summary>
    public async Task<(int Code, string Output)> CliAsync(params string[] args)
    {
        var psi = new ProcessStartInfo(BeemeshEnvironment.BeemeshPath) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args.Concat(["--agent", Directory]))
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        string text = await p.StandardOutput.ReadToEndAsync() + await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, text);
    }

    private Process Launch()
    {
        var psi = new ProcessStartInfo(BeemeshEnvironment.BeemeshPath) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "agent", "--state-dir", Directory }.Concat(_extraArguments))
        {
            psi.ArgumentList.Add(a);
        }

        var serving = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _serving = serving;
        var process = Process.Start(psi)!;
        // Drained so a chatty agent never blocks on a full pipe; it prints its admin socket once that serves.
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data?.StartsWith("admin API:", StringComparison.Ordinal) == true)
            {
                serving.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Waits until the agent says its admin socket serves, or it exits (60 s at most: a cap for a broken build).</summary>
    private async Task WaitUntilServingAsync()
    {
        try
        {
            await Task.WhenAny(_serving.Task, _process.WaitForExitAsync()).WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            // Whether it serves shows in the next CLI call.
        }
    }

    /// <summary>The <c>beemesh run</c> arguments for workload <paramref name="name"/> serving <paramref name="ports"/>.</summary>
    public string[] Workload(string name, params string[] ports) =>
        ["--agent", Directory, "--name", name, .. ports.SelectMany(p => new[] { "--port", p })];

    /// <summary>Runs <c>beemesh policy apply -f</c> on <paramref name="yaml"/>; returns its exit code and output.</summary>
    public async Task<(int Code, string Output)> ApplyPolicyAsync(string yaml)
    {
        string file = Path.Combine(Directory, $"policy-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(file, yaml);
        return await CliAsync("policy", "apply", "-f", file);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            ProcessTree.Kill(_process);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
