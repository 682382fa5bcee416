using Beemesh.Slirp;
using Beemesh.Slirp.Cli;
using Beemesh.Slirp.Sandbox;

// Parses the slirp4netns command line (help, version and errors exactly as slirp4netns prints
// them), then runs the stack until the exit fd closes or a signal arrives.
try
{
    SlirpParseResult result = SlirpCommandLine.Parse(args);
    // Inside the sandbox the same command line runs a second time: its warnings were printed once.
    bool sandboxed = result.Options?.EnableSandbox == true
        && Environment.GetEnvironmentVariable(SandboxHandoff.VariableName) is not null;
    if (!sandboxed)
    {
        Console.Out.Write(result.StandardOutput);
        Console.Out.Flush();
        Console.Error.Write(result.StandardError);
        Console.Error.Flush();
    }

    if (result.Outcome != SlirpParseOutcome.Run)
    {
        return result.ExitCode;
    }

    if (result.Options!.TargetType == SlirpTargetType.Bess)
    {
        Console.Error.WriteLine("--target-type=bess is not supported by beemesh-slirp (only netns)");
        return 1;
    }

    return SlirpHost.Run(result.Options, args, Console.Out, Console.Error);
}
catch (Exception e)
{
    // No input may end in an unhandled exception (a core dump and SIGABRT for podman to report):
    // whatever was missed above still ends as one line and slirp4netns's failure status.
    Console.Out.Flush();
    Console.Error.WriteLine($"beemesh-slirp: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
    return 1;
}
