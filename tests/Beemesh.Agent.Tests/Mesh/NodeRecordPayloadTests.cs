using System.Text;
using System.Text.Json;
using Beemesh.Agent.Client;
using Beemesh.Agent.Mesh;
using Beemesh.Overlay;
using Beemesh.Overlay.Codec;
using Beemesh.Overlay.Records;

namespace Beemesh.Agent.Tests.Mesh;

/// <summary>The node record's content on the wire: golden bytes, round trip, and the older form without a block.</summary>
public sealed class NodeRecordPayloadTests
{
    private const string Golden = """{"name":"node-2","overlay":"10.0.0.2:15010","tunnel":"10.0.0.2:15008","meshBlock":"10.200.7.0/24"}""";

    // Node records published before mesh address blocks existed: no meshBlock field.
    private const string WithoutBlock = """{"name":"node-2","overlay":"10.0.0.2:15010","tunnel":"10.0.0.2:15008"}""";

    private static readonly NodeRecordPayload Payload = new() { Name = "node-2", Overlay = "10.0.0.2:15010", Tunnel = "10.0.0.2:15008", MeshBlock = "10.200.7.0/24" };

    [Fact]
    public void EncodesToTheGoldenBytes() =>
        Assert.Equal(Golden, Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(Payload, AgentJsonContext.Default.NodeRecordPayload)));

    [Fact]
    public void DecodesTheGoldenBytesAndTheFormWithoutABlock()
    {
        NodeRecordPayload decoded = JsonSerializer.Deserialize(Golden, AgentJsonContext.Default.NodeRecordPayload)!;
        Assert.Equal(("node-2", "10.0.0.2:15010", "10.0.0.2:15008", "10.200.7.0/24"), (decoded.Name, decoded.Overlay, decoded.Tunnel, decoded.MeshBlock));

        NodeRecordPayload old = JsonSerializer.Deserialize(WithoutBlock, AgentJsonContext.Default.NodeRecordPayload)!;
        Assert.Equal(("node-2", "10.0.0.2:15008"), (old.Name, old.Tunnel));
        Assert.Null(old.MeshBlock);
        Assert.Equal(WithoutBlock, Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(old, AgentJsonContext.Default.NodeRecordPayload)));

        // A node whose record claims no block routes nothing; one with the golden claim routes its block.
        var plan = new MeshBlockPlan("10.200.0.0/16", 24);
        var claims = new MeshBlockClaims(plan, [(1UL, old.Name, old.MeshBlock), (2UL, "node-3", decoded.MeshBlock)]);
        Assert.NotNull(claims.CheckRoute(1, "10.200.0.1"));
        Assert.Null(claims.CheckRoute(2, "10.200.7.1"));
    }

    [Fact]
    public void TravelsInANodeRecordThroughTheOverlayCodecUnchanged()
    {
        byte[] payload = JsonSerializer.SerializeToUtf8Bytes(Payload, AgentJsonContext.Default.NodeRecordPayload);
        var record = new OverlayRecord(RecordKind.Node, "node-2", 7, new RecordVersion(new HlcTimestamp(1_000_000, 2), 7), 2_000_000, false, payload, [1, 2, 3]);
        byte[] frame = OverlayCodec.Encode(OverlayMessage.Gossip(record, false));
        Assert.Equal(FrameStatus.Complete, OverlayCodec.TryReadFrame(frame, out OverlayMessage? message, out int consumed, out _));
        Assert.Equal(frame.Length, consumed);
        OverlayRecord back = message!.Record!;
        Assert.Equal(payload, back.Payload.ToArray());
        Assert.Equal(record.SignedBytes(), back.SignedBytes());
        Assert.Equal("10.200.7.0/24", JsonSerializer.Deserialize(back.Payload.Span, AgentJsonContext.Default.NodeRecordPayload)!.MeshBlock);
    }
}
