using System.Text.Json;
using Beemesh.Agent.Client;
using Beemesh.Overlay;
using Beemesh.Overlay.Records;

namespace Beemesh.Agent.Mesh;

/// <summary>A node record that is live (not deleted, not expired, its node not revoked) and that its node signed itself, decoded.</summary>
/// <param name="NodeId">The node's overlay id (the record's signer).</param>
/// <param name="NodeName">The node's name, from its node SVID.</param>
/// <param name="Payload">The record's content.</param>
internal sealed record LiveNodeRecord(ulong NodeId, string NodeName, NodeRecordPayload Payload)
{
    /// <summary>
    /// The live node records <paramref name="node"/> holds (call on its owner loop). A record whose
    /// key is not its signer's name or whose payload does not decode is left out.
    /// </summary>
    public static List<LiveNodeRecord> All(OverlayNode node, X509RecordVerifier verifier, long now)
    {
        var nodes = new List<LiveNodeRecord>();
        foreach (OverlayRecord record in node.Store.Records)
        {
            if (record.Kind != RecordKind.Node || record.Tombstone || record.IsExpired(now) || verifier.Revoked.ContainsKey(record.Origin)
                || verifier.SignerName(record) is not { } nodeName || record.Key != MembersView.NodeKey(nodeName))
            {
                continue;
            }

            try
            {
                if (JsonSerializer.Deserialize(record.Payload.Span, AgentJsonContext.Default.NodeRecordPayload) is { } payload)
                {
                    nodes.Add(new LiveNodeRecord(record.Origin, nodeName, payload));
                }
            }
            catch (JsonException)
            {
            }
        }

        return nodes;
    }
}
