using System.Net;
using DotNext.Buffers;
using DotNext.Net;
using DotNext.Net.Cluster.Consensus.Raft.Membership;

namespace Beemesh.Sidecar.State.Strong;

/// <summary>The group's members (Raft endpoints), kept in a file of the replica's directory so a restarted replica knows its group.</summary>
internal sealed class RaftMemberStorage(string fileName) : PersistentClusterConfigurationStorage<EndPoint>(fileName)
{
    /// <inheritdoc />
    protected override EndPoint Decode(ref SequenceReader reader) => reader.ReadEndPoint();

    /// <inheritdoc />
    protected override void Encode(EndPoint address, ref BufferWriterSlim<byte> writer) => writer.WriteEndPoint(address);
}
