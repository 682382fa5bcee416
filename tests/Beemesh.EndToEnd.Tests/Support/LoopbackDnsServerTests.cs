using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Beemesh.EndToEnd.Tests.Support;

public class LoopbackDnsServerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Builds a standard query (RD set) by hand, per RFC 1035 §4.1.</summary>
    private static byte[] Query(ushort id, string name, ushort type, ushort qclass = 1)
    {
        var bytes = new List<byte> { (byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
        foreach (string label in name.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }

        bytes.AddRange(new byte[] { 0, (byte)(type >> 8), (byte)type, (byte)(qclass >> 8), (byte)qclass });
        return [.. bytes];
    }

    private static async Task<byte[]> UdpAsync(IPEndPoint server, byte[] query)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        await socket.ConnectAsync(server);
        await socket.SendAsync(query, SocketFlags.None);
        var buffer = new byte[65535];
        using var cts = new CancellationTokenSource(Timeout);
        int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
        return buffer[..n];
    }

    private static async Task<byte[]> TcpExchangeAsync(Socket socket, byte[] query)
    {
        var framed = new byte[query.Length + 2];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
        query.CopyTo(framed, 2);
        await socket.SendAsync(framed, SocketFlags.None);
        using var cts = new CancellationTokenSource(Timeout);
        byte[] prefix = await ReadExactlyAsync(socket, 2, cts.Token);
        return await ReadExactlyAsync(socket, BinaryPrimitives.ReadUInt16BigEndian(prefix), cts.Token);
    }

    private static async Task<byte[]> ReadExactlyAsync(Socket socket, int count, CancellationToken token)
    {
        var buffer = new byte[count];
        int read = 0;
        while (read < count)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, token);
            Assert.NotEqual(0, n);
            read += n;
        }

        return buffer;
    }

    private static ushort U16(byte[] b, int offset) => BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(offset));

    private static int Rcode(byte[] response) => response[3] & 0xF;

    /// <summary>Reads the RDATA of each answer, assuming the answers use a 2-byte name pointer as this server writes them.</summary>
    private static List<IPAddress> Answers(byte[] response, int questionLength)
    {
        var list = new List<IPAddress>();
        int at = 12 + questionLength;
        for (int i = 0; i < U16(response, 6); i++)
        {
            Assert.Equal(0xC00C, U16(response, at));
            int rdLength = U16(response, at + 10);
            list.Add(new IPAddress(response.AsSpan(at + 12, rdLength)));
            at += 12 + rdLength;
        }

        Assert.Equal(response.Length, at);
        return list;
    }

    [Fact]
    public async Task Binds_udp_and_tcp_on_one_loopback_port()
    {
        await using var server = new LoopbackDnsServer();

        Assert.Equal(IPAddress.Loopback, server.EndPoint.Address);
        Assert.NotEqual(0, server.EndPoint.Port);
        using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await tcp.ConnectAsync(server.EndPoint);
        Assert.True(tcp.Connected);
    }

    [Fact]
    public async Task Answers_a_registered_a_record_over_udp()
    {
        await using var server = new LoopbackDnsServer(ttlSeconds: 300);
        server.AddA("Web.Example.Test.", IPAddress.Parse("192.0.2.10"));
        byte[] query = Query(0xabcd, "web.EXAMPLE.test", 1);

        byte[] response = await UdpAsync(server.EndPoint, query);

        Assert.Equal(0xabcd, U16(response, 0));
        Assert.Equal(0x85, response[2]); // QR, AA, RD
        Assert.Equal(0, Rcode(response));
        Assert.Equal(1, U16(response, 4));
        Assert.Equal(1, U16(response, 6));
        int questionLength = query.Length - 12;
        Assert.Equal(query[12..], response[12..(12 + questionLength)]); // question echoed, case kept
        Assert.Equal([IPAddress.Parse("192.0.2.10")], Answers(response, questionLength));
        Assert.Equal(300u, BinaryPrimitives.ReadUInt32BigEndian(response.AsSpan(12 + questionLength + 6)));
        Assert.Equal(1, server.QueryCount);
        Assert.Equal(1, server.UdpQueryCount);
        Assert.Equal(["web.example.test"], server.QueriedNames);
    }

    [Fact]
    public async Task Answers_aaaa_and_gives_empty_noerror_for_a_type_the_name_lacks()
    {
        await using var server = new LoopbackDnsServer();
        server.AddAaaa("v6.test", IPAddress.Parse("2001:db8::10"));

        byte[] aaaa = await UdpAsync(server.EndPoint, Query(1, "v6.test", 28));
        byte[] a = await UdpAsync(server.EndPoint, Query(2, "v6.test", 1));

        Assert.Equal([IPAddress.Parse("2001:db8::10")], Answers(aaaa, "v6.test".Length + 2 + 4));
        Assert.Equal(0, Rcode(a));
        Assert.Equal(0, U16(a, 6));
        Assert.Equal(2, server.QueryCount);
    }

    [Fact]
    public async Task Unknown_name_gets_nxdomain()
    {
        await using var server = new LoopbackDnsServer();

        byte[] response = await UdpAsync(server.EndPoint, Query(7, "nowhere.test", 1));

        Assert.Equal(3, Rcode(response));
        Assert.Equal(0, U16(response, 6));
        Assert.Equal(1, server.QueryCount);
    }

    [Fact]
    public async Task Answers_several_queries_on_one_tcp_connection()
    {
        await using var server = new LoopbackDnsServer();
        server.AddA("tcp.test", IPAddress.Parse("192.0.2.20"));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.EndPoint);

        byte[] first = await TcpExchangeAsync(socket, Query(10, "tcp.test", 1));
        byte[] second = await TcpExchangeAsync(socket, Query(11, "other.test", 1));

        Assert.Equal(10, U16(first, 0));
        Assert.Equal([IPAddress.Parse("192.0.2.20")], Answers(first, "tcp.test".Length + 2 + 4));
        Assert.Equal(11, U16(second, 0));
        Assert.Equal(3, Rcode(second));
        Assert.Equal(2, server.TcpQueryCount);
        Assert.Equal(0, server.UdpQueryCount);
    }

    [Fact]
    public async Task Large_answer_is_truncated_over_udp_and_whole_over_tcp()
    {
        await using var server = new LoopbackDnsServer();
        for (int i = 1; i <= 40; i++)
        {
            server.AddAaaa("many.test", IPAddress.Parse($"2001:db8::{i:x}"));
        }

        byte[] udp = await UdpAsync(server.EndPoint, Query(5, "many.test", 28));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.EndPoint);
        byte[] tcp = await TcpExchangeAsync(socket, Query(5, "many.test", 28));

        Assert.True((udp[2] & 0x02) != 0, "TC must be set");
        Assert.Equal(0, U16(udp, 6));
        Assert.True(udp.Length <= 512);
        Assert.Equal(0, tcp[2] & 0x02);
        Assert.Equal(40, Answers(tcp, "many.test".Length + 2 + 4).Count);
    }

    [Fact]
    public async Task Follows_a_compression_pointer_in_the_question()
    {
        await using var server = new LoopbackDnsServer();
        server.AddA("www.example.test", IPAddress.Parse("192.0.2.30"));
        // Question "www" + pointer to offset 22, where "example.test" sits after QTYPE/QCLASS.
        byte[] query = Convert.FromHexString("004201000001000000000000" + "03777777" + "c016" + "0001" + "0001" + "076578616d706c65" + "0474657374" + "00");

        byte[] response = await UdpAsync(server.EndPoint, query);

        Assert.Equal(0, Rcode(response));
        Assert.Equal(["www.example.test"], server.QueriedNames);
        Assert.Equal([IPAddress.Parse("192.0.2.30")], Answers(response, "www.example.test".Length + 2 + 4));
    }

    [Fact]
    public async Task Malformed_queries_get_formerr_notimp_or_silence()
    {
        var server = new LoopbackDnsServer();
        try
        {
            byte[] pointerLoop = Convert.FromHexString("000101000001000000000000c00c00010001");
            byte[] twoQuestions = Query(2, "a.test", 1);
            twoQuestions[5] = 2;
            byte[] status = Query(3, "a.test", 1);
            status[2] = 0x10; // opcode 2 (STATUS)
            byte[] response = Query(4, "a.test", 1);
            response[2] |= 0x80;
            byte[] chaos = Query(5, "a.test", 1, qclass: 3);

            Assert.Equal(1, Rcode(server.Answer(pointerLoop, overUdp: true)!));
            Assert.Equal(1, Rcode(server.Answer(twoQuestions, overUdp: true)!));
            Assert.Equal(1, Rcode(server.Answer(Query(6, "a.test", 1)[..^2], overUdp: true)!));
            Assert.Equal(4, Rcode(server.Answer(status, overUdp: true)!));
            Assert.Equal(5, Rcode(server.Answer(chaos, overUdp: true)!));
            Assert.Null(server.Answer(response, overUdp: true));
            Assert.Null(server.Answer(new byte[11], overUdp: true));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Any_bytes_never_throw()
    {
        var server = new LoopbackDnsServer();
        try
        {
            var random = new Random(1234);
            for (int i = 0; i < 2000; i++)
            {
                byte[] bytes = new byte[random.Next(0, 80)];
                random.NextBytes(bytes);
                if (bytes.Length > 5 && i % 2 == 0)
                {
                    bytes[2] &= 0x07; // mostly queries with opcode 0
                    bytes[4] = 0;
                    bytes[5] = 1;
                }

                byte[]? reply = server.Answer(bytes, overUdp: true);
                Assert.True(reply is null || reply.Length >= 12);
            }
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Refuses_records_of_the_wrong_family_and_bad_names()
    {
        var server = new LoopbackDnsServer();
        try
        {
            Assert.Throws<ArgumentException>(() => server.AddA("x.test", IPAddress.IPv6Loopback));
            Assert.Throws<ArgumentException>(() => server.AddAaaa("x.test", IPAddress.Loopback));
            Assert.Throws<ArgumentException>(() => server.AddA("a..test", IPAddress.Loopback));
            Assert.Throws<ArgumentException>(() => server.AddA(new string('a', 64) + ".test", IPAddress.Loopback));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}
