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

    private static readonly IPAddress ServiceAddress = IPAddress.Parse("127.100.0.1");

    // "api.default.svc.cluster.local" as DNS labels.
    private const string ApiName = "03617069" + "0764656661756C74" + "03737663" + "07636C7573746572" + "056C6F63616C" + "00";

    [Fact]
    public async Task An_A_query_for_a_mesh_name_gets_exactly_these_bytes()
    {
        using var upstream = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        await using var dns = new MeshDnsServer(n => n == "api.default.svc.cluster.local." ? ServiceAddress : null, (IPEndPoint)upstream.Client.LocalEndPoint!);

        byte[] reply = await AskAsync(dns, Convert.FromHexString("ABCD" + "0100" + "0001" + "0000" + "0000" + "0000" + ApiName + "00010001"));

        string golden =
            "ABCD" + "8580" + "0001" + "0001" + "0000" + "0000" // id; QR AA RD, RA NOERROR; 1 question, 1 answer
            + ApiName + "0001" + "0001"                         // the question: A, IN
            + "C00C" + "0001" + "0001" + "00000005" + "0004" + "7F640001"; // pointer to the name, A, IN, TTL 5, 127.100.0.1
        Assert.Equal(golden, Convert.ToHexString(reply));
    }

    [Fact]
    public async Task An_AAAA_query_for_a_mesh_name_gets_no_data_and_no_error()
    {
        using var upstream = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        await using var dns = new MeshDnsServer(n => n == "api.default.svc.cluster.local." ? ServiceAddress : null, (IPEndPoint)upstream.Client.LocalEndPoint!);

        // With an EDNS OPT record, which the answer does not carry back.
        byte[] query = Convert.FromHexString("1234" + "0100" + "0001" + "0000" + "0000" + "0001" + ApiName + "001C0001" + "0000291000000000000000");
        byte[] reply = await AskAsync(dns, query);

        Assert.Equal("1234" + "8580" + "0001" + "0000" + "0000" + "0000" + ApiName + "001C0001", Convert.ToHexString(reply));
    }

    [Fact]
    public async Task Other_names_go_to_the_upstream_and_its_answer_comes_back_unchanged()
    {
        using var upstream = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        await using var dns = new MeshDnsServer(_ => null, (IPEndPoint)upstream.Client.LocalEndPoint!);
        byte[] query = Query(0x0F0F, "www.example.org", edns: true);
        using var client = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        await client.SendAsync(query, dns.EndPoint);

        UdpReceiveResult relayed = await upstream.ReceiveAsync().WaitAsync(Guard);
        Assert.Equal(query, relayed.Buffer);
        byte[] answer = [.. query.AsSpan(0, 12 + Name("www.example.org").Length + 4), 0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7];
        answer[2] = 0x81;
        answer[3] = 0x80;
        answer[7] = 1; // one answer
        answer[11] = 0; // no OPT in this answer
        await upstream.SendAsync(answer, relayed.RemoteEndPoint);

        UdpReceiveResult back = await client.ReceiveAsync().WaitAsync(Guard);
        Assert.Equal(answer, back.Buffer);
        Assert.Equal(0, dns.Dropped);
    }

    [Fact]
    public async Task Malformed_queries_are_dropped_and_counted_and_the_server_keeps_answering()
    {
        using var upstream = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        await using var dns = new MeshDnsServer(_ => Known, (IPEndPoint)upstream.Client.LocalEndPoint!);
        using var client = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));

        byte[] response = Query(1, "api.default", edns: false);
        response[2] |= 0x80; // QR: a response, not a query
        byte[] twoQuestions = Query(2, "api.default", edns: false);
        twoQuestions[5] = 2;
        byte[] pointer = Query(3, "api.default", edns: false);
        pointer[12] = 0xC0;
        byte[] cut = Query(4, "api.default", edns: false)[..20]; // the question ends inside its name
        foreach (byte[] bad in new[] { new byte[] { 0, 5, 1, 0, 0 }, response, twoQuestions, pointer, cut })
        {
            await client.SendAsync(bad, dns.EndPoint);
        }

        // One loop reads the queries in order: when the good one is answered, the bad ones were handled.
        await client.SendAsync(Query(5, "api.default", edns: false), dns.EndPoint);
        UdpReceiveResult reply = await client.ReceiveAsync().WaitAsync(Guard);

        Assert.Equal(5, BinaryPrimitives.ReadUInt16BigEndian(reply.Buffer));
        Assert.Equal(Known, new IPAddress(reply.Buffer.AsSpan(reply.Buffer.Length - 4)));
        Assert.Equal(5, dns.Dropped);
        Assert.Equal(0, upstream.Available); // none of them was relayed
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
