using System.CommandLine;
using System.Globalization;
using Beemesh.Agent.Client;

namespace Beemesh.Cli.Commands;

/// <summary><c>beemesh status [--agent DIR]</c>: the agent's workloads, identities, SVID lifetimes, live connections and policies, and other nodes' workloads with their node.</summary>
public static class StatusCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var agentDir = AgentCommand.AgentDirectoryOption();
        var status = new Command("status", "Show the agent's workloads, identities, connections and policies") { agentDir };
        status.SetAction((parse, cancellationToken) => AgentCommand.WithClientAsync(parse, "status", parse.GetValue(agentDir)!, async (client, output) =>
        {
            AgentStatus s = await client.GetStatusAsync(cancellationToken).ConfigureAwait(false);
            await output.WriteLineAsync($"trust domain  {s.TrustDomain}").ConfigureAwait(false);
            await output.WriteLineAsync($"workload API  unix://{s.WorkloadApiSocket}").ConfigureAwait(false);
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"SVIDs         valid {TimeSpan.FromSeconds(s.SvidTtlSeconds)}, rotated at half-life; root CA expires {s.RootExpires:yyyy-MM-dd}")).ConfigureAwait(false);
            await output.WriteLineAsync($"policies      {s.PolicyCount} (version {s.PolicyVersion})").ConfigureAwait(false);
            await output.WriteLineAsync($"workloads     {s.Workloads.Count}").ConfigureAwait(false);
            foreach (WorkloadStatus w in s.Workloads)
            {
                WorkloadRecord r = w.Workload;
                string ports = string.Join(',', r.Ports.Select(p => p.Protocol == "tcp" ? p.Port.ToString(CultureInfo.InvariantCulture) : $"{p.Port}/{p.Protocol}"));
                await output.WriteLineAsync($"  {r.Name}.{r.Namespace} [{r.Id}]  {r.SpiffeId}  mesh {r.MeshAddress}  pid {r.Pid} ({(w.PidAlive ? "alive" : "gone")})  tunnel {r.TunnelEndpoint}  ports {(ports.Length == 0 ? "-" : ports)}").ConfigureAwait(false);
                await output.WriteLineAsync(w.SvidNotAfter is DateTimeOffset expires
                    ? string.Create(CultureInfo.InvariantCulture, $"    svid serial {w.SvidSerial}, expires {expires:yyyy-MM-ddTHH:mm:ssZ} (in {Remaining(expires - DateTimeOffset.UtcNow)})")
                    : "    svid not reported yet").ConfigureAwait(false);
                await output.WriteLineAsync(w.PolicyVersion is long enforced
                    ? $"    policies version {enforced} ({(enforced >= s.PolicyVersion ? "current" : "behind")})"
                    : "    policies not reported yet").ConfigureAwait(false);
                await output.WriteLineAsync(w.WorkloadListVersion is long routed
                    ? $"    workload list version {routed} ({(routed >= s.WorkloadListVersion ? "current" : "behind")})"
                    : "    workload list not reported yet").ConfigureAwait(false);
                foreach (LiveConnection c in w.Connections)
                {
                    string by = c.Policy.Length == 0 ? "allowed by default" : c.Rule >= 0 ? $"{c.Policy} rule {c.Rule}" : c.Policy;
                    await output.WriteLineAsync($"    {c.Direction} {c.Peer} port {c.Port}: {by}").ConfigureAwait(false);
                }
            }

            // Workloads of other nodes (routes they published), from the workload list the sidecars watch.
            List<WorkloadRecord> remote = [.. (await client.WatchWorkloadsAsync(null, 0, TimeSpan.Zero, cancellationToken).ConfigureAwait(false)).Workloads
                .Where(w => w.Node is not null)
                .OrderBy(w => w.Node, StringComparer.Ordinal).ThenBy(w => w.Namespace, StringComparer.Ordinal).ThenBy(w => w.Name, StringComparer.Ordinal)];
            if (remote.Count > 0)
            {
                await output.WriteLineAsync($"remote        {remote.Count}").ConfigureAwait(false);
                foreach (WorkloadRecord r in remote)
                {
                    await output.WriteLineAsync($"  {r.Name}.{r.Namespace}  node {r.Node}  {r.SpiffeId}  mesh {r.MeshAddress}").ConfigureAwait(false);
                }
            }

            // Names with more than one replica: each caller's sidecar spreads new connections over all of them.
            var replicated = s.Workloads.Select(w => w.Workload).Concat(remote)
                .GroupBy(w => $"{w.Name}.{w.Namespace}", StringComparer.Ordinal)
                .Where(g => g.Count() > 1)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .ToList();
            if (replicated.Count > 0)
            {
                await output.WriteLineAsync($"replicated    {replicated.Count}").ConfigureAwait(false);
                foreach (var service in replicated)
                {
                    int here = service.Count(w => w.Node is null);
                    string nodes = string.Join(", ", service.Where(w => w.Node is not null).GroupBy(w => w.Node!, StringComparer.Ordinal)
                        .OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Count()} on {g.Key}"));
                    string where = here > 0 && nodes.Length > 0 ? $"{here} here, {nodes}" : here > 0 ? $"{here} here" : nodes;
                    await output.WriteLineAsync($"  {service.Key}  {service.Count()} replicas ({where}), new connections round robin over all").ConfigureAwait(false);
                }
            }

            return 0;
        }));
        return status;
    }

    private static string Remaining(TimeSpan left) => left <= TimeSpan.Zero
        ? "expired"
        : left.TotalHours >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)left.TotalHours}h{left.Minutes:00}m")
        : string.Create(CultureInfo.InvariantCulture, $"{(int)left.TotalMinutes}m{left.Seconds:00}s");
}
