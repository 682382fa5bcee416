using Beemesh.Slirp;
using Beemesh.Slirp.Cli;

// Parses the slirp4netns command line (help, version and errors exactly as slirp4netns prints
// them), then runs the stack until the exit fd closes or a signal arrives.
SlirpParseResult result = SlirpCommandLine.Parse(args);
Console.Out.Write(result.StandardOutput);
Console.Out.Flush();
Console.Error.Write(result.StandardError);
Console.Error.Flush();
if (result.Outcome != SlirpParseOutcome.Run)
{
    return result.ExitCode;
}

if (result.Options!.TargetType == SlirpTargetType.Bess)
{
    Console.Error.WriteLine("--target-type=bess is not supported by beemesh-slirp (only netns)");
    return 1;
}

return SlirpHost.Run(result.Options, Console.Out, Console.Error);
