using Beemesh.Linearizability;

// Beemesh.Linearizability FILE [--max-steps N]: checks a JSON-lines history (see README.md).
return CheckCommand.Run(args, Console.Out, Console.Error);
