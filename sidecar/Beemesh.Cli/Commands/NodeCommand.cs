using System.CommandLine;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh node remove NAME [--agent DIR]</c>: revokes a node across the mesh. Runs on the first
/// node (the one holding the trust domain's root key); every node then refuses the removed node's
/// overlay links and records and drops its routes, and the name cannot join again.
/// </summary>
public static class NodeCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var agentDir = AgentCommand.AgentDirectoryOption();
        var name = new Argument<string>("name") { Description = "Name of the node to remove" };
        var remove = new Command("remove", "Revoke a node: every node refuses its links, records and routes (run on the first node)") { name, agentDir };
        remove.SetAction((parse, cancellationToken) => AgentCommand.WithClientAsync(parse, "node remove", parse.GetValue(agentDir)!, async (client, output) =>
        {
            string node = parse.GetValue(name)!;
            if (!await client.RemoveNodeAsync(node, cancellationToken).ConfigureAwait(false))
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync("beemesh node remove: this agent runs without the overlay (start it with --node-name and --listen)").ConfigureAwait(false);
                return 1;
            }

            await output.WriteLineAsync($"node {node} revoked; every node refuses its links, records and routes").ConfigureAwait(false);
            return 0;
        }));
        return new Command("node", "Nodes of the mesh") { remove };
    }
}
