using Beemesh.Linearizability;

// Beemesh.Linearizability FILE [--max-steps N]: checks a JSON-lines history (see README.md).
// Beemesh.Linearizability client ...: concurrent clients of a Dapr state store recording a history (ClientCommand).
if (args is ["client", .. var rest])
{
    using var stopping = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;
        stopping.Cancel();
    };
    try
    {
        return await ClientCommand.RunAsync(rest, Console.Out, Console.Error, stopping.Token);
    }
    catch (OperationCanceledException)
    {
        return 130;
    }
}

return CheckCommand.Run(args, Console.Out, Console.Error);
