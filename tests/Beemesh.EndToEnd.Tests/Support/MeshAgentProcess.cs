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

    private MeshAgentProcess(string directory, Process process, string[] extraArguments)
    {
        Directory = directory;
        _process = process;
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
        var agent = new MeshAgentProcess(directory, Launch(directory, extraArguments), extraArguments);
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
        _process = Launch(Directory, _extraArguments);
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

    private static Process Launch(string directory, string[] extraArguments)
    {
        var psi = new ProcessStartInfo(BeemeshEnvironment.BeemeshPath) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "agent", "--state-dir", directory }.Concat(extraArguments))
        {
            psi.ArgumentList.Add(a);
        }

        var process = Process.Start(psi)!;
        // Drained so a chatty agent never blocks on a full pipe.
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Waits (up to 10 s) until the admin socket accepts connections or the agent exits.</summary>
    private async Task WaitUntilServingAsync()
    {
        string socket = Path.Combine(Directory, "admin.sock");
        for (int i = 0; i < 100 && !_process.HasExited; i++)
        {
            using var probe = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            try
            {
                await probe.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
                return;
            }
            catch (System.Net.Sockets.SocketException)
            {
                await Task.Delay(100);
            }
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
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
