using System.CommandLine;
using Beemesh.Inject;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh manifests</c>: writes the Kubernetes objects that run the node agent on every node of
/// a cluster (see <see cref="AgentManifests"/>) to stdout.
/// </summary>
public static class ManifestsCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var defaults = new AgentManifestOptions();
        var image = new Option<string>("--image") { Description = "Image with the beemesh binary", DefaultValueFactory = _ => defaults.Image };
        var ns = new Option<string>("--namespace", "-n") { Description = "Namespace of the agent's objects", DefaultValueFactory = _ => defaults.Namespace };
        var agentDir = new Option<string>("--agent-dir") { Description = "The agent's state directory on each node (pass the same to beemesh inject --agent-dir)", DefaultValueFactory = _ => defaults.AgentDirectory };
        var trustDomain = new Option<string>("--trust-domain") { Description = "Trust domain of the mesh", DefaultValueFactory = _ => defaults.TrustDomain };
        var nodePort = new Option<int>("--node-port") { Description = "The node port (joins, overlay links) on each node", DefaultValueFactory = _ => defaults.NodePort };
        var tunnelPort = new Option<int>("--tunnel-port") { Description = "The tunnel port (TCP, UDP for QUIC) on each node", DefaultValueFactory = _ => defaults.TunnelPort };
        var join = new Option<string?>("--join")
        {
            Description = $"IP:PORT of the first node's node port: also writes the DaemonSet of the other nodes, which join it with their token from the secret {AgentManifests.JoinSecret}",
        };
        var command = new Command("manifests", $"Write the Kubernetes DaemonSets that run the node agent (the first node is the one labelled {AgentManifests.FirstNodeLabel}=true)")
        {
            image, ns, agentDir, trustDomain, nodePort, tunnelPort, join,
        };
        command.SetAction(async (parse, cancel) =>
        {
            string yaml;
            try
            {
                yaml = AgentManifests.Generate(new AgentManifestOptions
                {
                    Image = parse.GetValue(image)!,
                    Namespace = parse.GetValue(ns)!,
                    AgentDirectory = parse.GetValue(agentDir)!,
                    TrustDomain = parse.GetValue(trustDomain)!,
                    NodePort = parse.GetValue(nodePort),
                    TunnelPort = parse.GetValue(tunnelPort),
                    Join = parse.GetValue(join),
                });
            }
            catch (ArgumentException e)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"beemesh manifests: {e.Message.Replace(" (Parameter 'options')", string.Empty, StringComparison.Ordinal)}").ConfigureAwait(false);
                return 2;
            }

            await parse.InvocationConfiguration.Output.WriteAsync(yaml).ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}
