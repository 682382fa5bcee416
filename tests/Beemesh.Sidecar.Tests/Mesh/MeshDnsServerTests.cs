using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Beemesh.Sidecar.Mesh;

namespace Beemesh.Sidecar.Tests.Mesh;

public sealed class MeshDnsServerTests
{
    /// <summary>Guards against a hang only: the behaviour under test is the answer, not its timing.</summary>
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    private static readonly IPAddress Known = IPAddress.Parse("10.200.0.7");

    [Fact]
    public void Server_failure_keeps_the_id_the_rd_bit_and_the_question_and_carries_no_records()
    {
        byte[] query = Query(0xBEEF, "example.org", edns: true);
        byte[] reply = MeshDnsServer.ServerFailure(query);

        int questionEnd = 12 + Name("example.org").Length + 4;
        Assert.Equal(questionEnd, reply.Length); // the EDNS OPT record is not echoed
        Assert.Equal(0xBEEF, BinaryPrimitives.ReadUInt16BigEndian(reply));
        Assert.Equal(0x81, reply[2]); // QR and RD
        Assert.Equal(0x82, reply[3]); // RA, RCODE 2
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(4)));
        Assert.True(reply.AsSpan(6, 6).SequenceEqual(new byte[6]));
        Assert.True(reply.AsSpan(12).SequenceEqual(query.AsSpan(12, questionEnd - 12)));
    }

    [Fact]
    public void Server_failure_to_a_query_without_a_readable_question_is_the_header_alone()
    {
        byte[] query = Query(7, "example.org", edns: false);
        query[12] = 0xC0; // a compression pointer where the question's name starts: not readable
        byte[] reply = MeshDnsServer.ServerFailure(query);

        Assert.Equal(12, reply.Length);
        Assert.Equal(7, BinaryPrimitives.ReadUInt16BigEndian(reply));
        Assert.Equal(2, reply[3] & 0x0F);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(4)));
    }

    [Fact]
    public async Task A_relayed_query_the_upstream_never_answers_gets_servfail()
    {
        using var silent = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0)); // receives, never answers
        await using var dns = new MeshDnsServer(_ => null, (IPEndPoint)silent.Client.LocalEndPoint!, TimeSpan.FromMilliseconds(50));

        byte[] reply = await AskAsync(dns, Query(0x1234, "nowhere.example", edns: false));

        Assert.Equal(0x1234, BinaryPrimitives.ReadUInt16BigEndian(reply));
        Assert.Equal(2, reply[3] & 0x0F);
        Assert.Equal(1, dns.UpstreamFailures);
        UdpReceiveResult relayed = await silent.ReceiveAsync().WaitAsync(Guard);
        Assert.Equal(0x1234, BinaryPrimitives.ReadUInt16BigEndian(relayed.Buffer)); // it was relayed first
    }

    [Fact]
    public async Task A_relayed_query_the_upstream_refuses_gets_servfail_without_waiting_for_the_timeout()
    {
        IPEndPoint closed;
        using (var gone = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0)))
        {
            closed = (IPEndPoint)gone.Client.LocalEndPoint!; // nothing listens there once disposed
        }

        // A timeout far beyond the guard: only the ICMP port unreachable can produce the answer.
        await using var dns = new MeshDnsServer(_ => null, closed, TimeSpan.FromHours(1));

        byte[] reply = await AskAsync(dns, Query(0x4321, "nowhere.example", edns: false));

        Assert.Equal(0x4321, BinaryPrimitives.ReadUInt16BigEndian(reply));
        Assert.Equal(2, reply[3] & 0x0F);
        Assert.Equal(1, dns.UpstreamFailures);
    }

    [Fact]
    public async Task A_name_that_joins_the_mesh_while_its_query_is_relayed_is_answered_from_the_mesh()
    {
        IPEndPoint closed;
        using (var gone = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0)))
        {
            closed = (IPEndPoint)gone.Client.LocalEndPoint!;
        }

        // The look-up on receipt misses (the query is relayed); the one after the upstream refused finds the name.
        int lookups = 0;
        await using var dns = new MeshDnsServer(_ => Interlocked.Increment(ref lookups) == 1 ? null : Known, closed, TimeSpan.FromHours(1));

        byte[] reply = await AskAsync(dns, Query(10, "api.default", edns: false));

        Assert.Equal(2, Volatile.Read(ref lookups));
        Assert.Equal(0, reply[3] & 0x0F); // NOERROR
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(6)));
        Assert.Equal(Known, new IPAddress(reply.AsSpan(reply.Length - 4)));
    }

    private static async Task<byte[]> AskAsync(MeshDnsServer dns, byte[] query)
    {
        using var client = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        await client.SendAsync(query, dns.EndPoint);
        UdpReceiveResult answer = await client.ReceiveAsync().WaitAsync(Guard);
        return answer.Buffer;
    }

    private static byte[] Name(string name)
    {
        var bytes = new List<byte>();
        foreach (string label in name.Split('.'))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(System.Text.Encoding.ASCII.GetBytes(label));
        }

        bytes.Add(0);
        return [.. bytes];
    }

    private static byte[] Query(ushort id, string name, bool edns)
    {
        byte[] qname = Name(name);
        var q = new byte[12 + qname.Length + 4 + (edns ? 11 : 0)];
        BinaryPrimitives.WriteUInt16BigEndian(q, id);
        q[2] = 0x01; // RD
        BinaryPrimitives.WriteUInt16BigEndian(q.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt16BigEndian(q.AsSpan(10), (ushort)(edns ? 1 : 0));
        qname.CopyTo(q, 12);
        BinaryPrimitives.WriteUInt16BigEndian(q.AsSpan(12 + qname.Length), 1); // A
        BinaryPrimitives.WriteUInt16BigEndian(q.AsSpan(14 + qname.Length), 1); // IN
        if (edns)
        {
            var opt = q.AsSpan(16 + qname.Length);
            opt[0] = 0; // root
            BinaryPrimitives.WriteUInt16BigEndian(opt[1..], 41);
            BinaryPrimitives.WriteUInt16BigEndian(opt[3..], 1232);
        }

        return q;
    }
}
