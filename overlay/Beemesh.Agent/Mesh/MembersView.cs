using System.Globalization;
using System.Text.Json;
using Beemesh.Agent.Client;
using Beemesh.Overlay;
using Beemesh.Overlay.Records;

namespace Beemesh.Agent.Mesh;

/// <summary>Builds <see cref="MembersReport"/> from an overlay node's views and records (on its owner loop).</summary>
internal static class MembersView
{
    /// <summary>Record key of a node's node record: its name.</summary>
    public static string NodeKey(string nodeName) => nodeName;

    public static MembersReport Build(OverlayNode node, string selfName, long now)
    {
        var names = new Dictionary<ulong, string>();
        var nodes = new Dictionary<ulong, MemberNode>();
        var perOrigin = new Dictionary<ulong, (int Count, RecordVersion Newest)>();
        var revoked = new SortedSet<string>(StringComparer.Ordinal);
        var revokedIds = new HashSet<ulong>();
        foreach (OverlayRecord record in node.Store.Records)
        {
            perOrigin[record.Origin] = perOrigin.TryGetValue(record.Origin, out var o)
                ? (o.Count + 1, record.Version > o.Newest ? record.Version : o.Newest)
                : (1, record.Version);
            if (record.Kind == RecordKind.Revocation && !record.Tombstone)
            {
                revoked.Add(record.Key);
                revokedIds.Add(record.Subject);
            }

            if (record.Kind != RecordKind.Node)
            {
                continue;
            }

            NodeRecordPayload? payload = null;
            if (!record.Tombstone)
            {
                try
                {
                    payload = JsonSerializer.Deserialize(record.Payload.Span, AgentJsonContext.Default.NodeRecordPayload);
                }
                catch (JsonException)
                {
                }
            }

            string name = payload?.Name ?? record.Key;
            names[record.Origin] = name;
            nodes[record.Origin] = new MemberNode
            {
                Name = name,
                Id = Hex(record.Origin),
                State = record.Tombstone ? "left" : record.IsExpired(now) ? "dead" : "alive",
                Overlay = payload?.Overlay,
                Tunnel = payload?.Tunnel,
                Quic = payload?.QuicEndpoint()?.ToString(),
                MeshBlock = payload?.MeshBlock,
                Version = record.Version.ToString(),
            };
        }

        foreach ((ulong origin, MemberNode member) in nodes)
        {
            if (perOrigin.TryGetValue(origin, out var o))
            {
                member.Records = o.Count;
                member.NewestVersion = o.Newest.ToString();
            }

            if (revokedIds.Contains(origin))
            {
                member.State = "revoked";
            }
            else if (member.State == "alive" && node.IsSuspected(origin))
            {
                member.State = "suspect";
            }
        }

        return new MembersReport
        {
            Node = selfName,
            Id = Hex(node.Self.Id),
            Active = [.. node.ActiveView.Select(p => Name(names, p))],
            Passive = [.. node.PassiveView.Select(p => Name(names, p))],
            Nodes = [.. nodes.Values.OrderBy(n => n.Name, StringComparer.Ordinal)],
            Revoked = [.. revoked],
        };
    }

    /// <summary>
    /// Node ports of the live nodes other than this one, from the node records they signed themselves
    /// (the candidates a joined node asks for a renewal of its certificates).
    /// </summary>
    public static List<System.Net.IPEndPoint> NodeEndpoints(OverlayNode node, OverlayHost host)
    {
        long now = host.Now();
        var endpoints = new List<System.Net.IPEndPoint>();
        foreach (OverlayRecord record in node.Store.Records)
        {
            if (record.Kind != RecordKind.Node || record.Tombstone || record.IsExpired(now) || record.Origin == node.Self.Id
                || host.Verifier.Revoked.ContainsKey(record.Origin)
                || host.Verifier.SignerName(record) is not { } signer || record.Key != NodeKey(signer))
            {
                continue;
            }

            try
            {
                if (JsonSerializer.Deserialize(record.Payload.Span, AgentJsonContext.Default.NodeRecordPayload)?.Overlay is { } overlay
                    && System.Net.IPEndPoint.TryParse(overlay, out System.Net.IPEndPoint? endpoint) && endpoint.Port != 0)
                {
                    endpoints.Add(endpoint);
                }
            }
            catch (JsonException)
            {
            }
        }

        return endpoints;
    }

    private static string Name(Dictionary<ulong, string> names, PeerAddress peer) =>
        names.TryGetValue(peer.Id, out string? name) ? name : peer.ToString();

    private static string Hex(ulong id) => id.ToString("x16", CultureInfo.InvariantCulture);
}
