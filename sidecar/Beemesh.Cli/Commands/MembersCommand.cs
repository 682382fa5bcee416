using System.CommandLine;
using Beemesh.Agent.Client;

namespace Beemesh.Cli.Commands;

/// <summary><c>beemesh members [--agent DIR]</c>: this node's overlay views and every node it knows, with state and record versions.</summary>
public static class MembersCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var agentDir = AgentCommand.AgentDirectoryOption();
        var members = new Command("members", "Show this node's overlay neighbours and every known node (state, record versions)") { agentDir };
        members.SetAction((parse, cancellationToken) => AgentCommand.WithClientAsync(parse, "members", parse.GetValue(agentDir)!, async (client, output) =>
        {
            MembersReport report = await client.GetMembersAsync(cancellationToken).ConfigureAwait(false);
            await output.WriteLineAsync($"node     {report.Node} ({report.Id})").ConfigureAwait(false);
            await output.WriteLineAsync($"active   {(report.Active.Count == 0 ? "-" : string.Join(' ', report.Active))}").ConfigureAwait(false);
            await output.WriteLineAsync($"passive  {(report.Passive.Count == 0 ? "-" : string.Join(' ', report.Passive))}").ConfigureAwait(false);
            await output.WriteLineAsync($"policies {report.PolicyVersion ?? "-"}").ConfigureAwait(false);
            if (report.NodeCertificateExpires is { } expires)
            {
                string renews = report.NodeCertificateRenews is { } at ? at.ToString("u", System.Globalization.CultureInfo.InvariantCulture) : "-";
                string failed = report.NodeCertificateRenewalError is { } error ? $" (last renewal failed: {error})" : "";
                await output.WriteLineAsync($"cert     expires {expires.ToString("u", System.Globalization.CultureInfo.InvariantCulture)}, renews {renews}{failed}").ConfigureAwait(false);
            }

            await output.WriteLineAsync($"nodes    {report.Nodes.Count}").ConfigureAwait(false);
            foreach (MemberNode n in report.Nodes)
            {
                await output.WriteLineAsync($"  {n.Name,-20} {n.State,-7} {n.Overlay ?? "-",-21} block {n.MeshBlock ?? "-",-18} quic {n.Quic ?? "-",-21} node record {n.Version}  records {n.Records} (newest {n.NewestVersion})").ConfigureAwait(false);
            }

            await output.WriteLineAsync($"revoked  {(report.Revoked.Count == 0 ? "-" : string.Join(' ', report.Revoked))}").ConfigureAwait(false);
            return 0;
        }));
        return members;
    }
}
