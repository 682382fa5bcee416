using Beemesh.Slirp.Cli;

// Temporary entry: parses the slirp4netns command line and prints help, version and errors exactly
// as slirp4netns does. Starting the stack is wired in separately.
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
    Console.Error.WriteLine("--target-type=bess is not supported");
    return 1;
}

Console.Error.WriteLine("the network stack is not started by this build");
return 1;
