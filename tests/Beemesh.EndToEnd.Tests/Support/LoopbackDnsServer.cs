using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// A tiny authoritative DNS server for tests. It listens on UDP and TCP on the same ephemeral
/// port of 127.0.0.1 and answers A and AAAA questions (RFC 1035) for names registered with
/// <see cref="AddA"/> / <see cref="AddAaaa"/>; other names get NXDOMAIN, a known name asked
/// for another type gets an empty NOERROR answer. Point the stack's forwarder at it with
/// <c>BEEMESH_DNS_UPSTREAM=</c><see cref="EndPoint"/>.
/// </summary>
/// <remarks>
/// Behaviour on odd input: messages shorter than 12 bytes and responses (QR = 1) are dropped
/// without reply; an opcode other than QUERY gets NOTIMP; QDCOUNT ≠ 1 or a malformed question
/// gets FORMERR; a class other than IN gets REFUSED. Compression pointers in the question name
/// are followed (bounded, loops refused). UDP answers larger than 512 bytes are sent truncated
/// (TC = 1, no answers) so a client retries over TCP (RFC 1035 §4.2.1); EDNS is ignored.
/// </remarks>
public sealed class LoopbackDnsServer : IAsyncDisposable
{
    private const int UdpLimit = 512;
    private const ushort TypeA = 1;
    private const ushort TypeAaaa = 28;
    private const ushort TypeAny = 255;
    private const ushort ClassIn = 1;

    private readonly object _gate = new();
    private readonly Dictionary<string, List<IPAddress>> _records = new(StringComparer.Ordinal);
    private readonly List<string> _queriedNames = [];
    private readonly Socket _udp;
    private readonly Socket _tcp;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _udpLoop;
    private readonly Task _tcpLoop;
    private int _udpQueries;
    private int _tcpQueries;

    /// <summary>Binds UDP and TCP on one free port of 127.0.0.1 and starts serving.</summary>
    /// <param name="ttlSeconds">TTL put on every answer.</param>
    public LoopbackDnsServer(uint ttlSeconds = 60)
    {
        TtlSeconds = ttlSeconds;
        (_udp, _tcp) = BindPair();
        EndPoint = (IPEndPoint)_udp.LocalEndPoint!;
        _udpLoop = Task.Run(ServeUdpAsync);
        _tcpLoop = Task.Run(ServeTcpAsync);
    }

    /// <summary>Where the server listens, for UDP and TCP alike.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>TTL of every answer record.</summary>
    public uint TtlSeconds { get; }

    /// <summary>Queries answered (with any RCODE) over UDP and TCP together.</summary>
    public int QueryCount => Volatile.Read(ref _udpQueries) + Volatile.Read(ref _tcpQueries);

    /// <summary>Queries answered over UDP.</summary>
    public int UdpQueryCount => Volatile.Read(ref _udpQueries);

    /// <summary>Queries answered over TCP.</summary>
    public int TcpQueryCount => Volatile.Read(ref _tcpQueries);

    /// <summary>Question names seen, lower-case without the trailing dot, in arrival order.</summary>
    public IReadOnlyList<string> QueriedNames
    {
        get
        {
            lock (_gate)
            {
                return [.. _queriedNames];
            }
        }
    }

    /// <summary>Adds an A record; a name may have several.</summary>
    /// <param name="name">The owner name (case-insensitive, trailing dot optional).</param>
    /// <param name="address">An IPv4 address.</param>
    public void AddA(string name, IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException("An A record needs an IPv4 address.", nameof(address));
        }

        Add(name, address);
    }

    /// <summary>Adds an AAAA record; a name may have several.</summary>
    /// <param name="name">The owner name (case-insensitive, trailing dot optional).</param>
    /// <param name="address">An IPv6 address.</param>
    public void AddAaaa(string name, IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            throw new ArgumentException("An AAAA record needs an IPv6 address.", nameof(address));
        }

        Add(name, address);
    }

    /// <summary>Stops serving and closes both sockets.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        _stop.Cancel();
        _udp.Dispose();
        _tcp.Dispose();
        try
        {
            await Task.WhenAll(_udpLoop, _tcpLoop).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Expected while shutting down.
        }

        _stop.Dispose();
    }

    /// <summary>Builds the reply to one query message, or null when the message gets none.</summary>
    /// <param name="query">The DNS message (without TCP length prefix).</param>
    /// <param name="overUdp">True to apply the 512-byte UDP limit.</param>
    /// <returns>The response message, or null to stay silent.</returns>
    internal byte[]? Answer(ReadOnlySpan<byte> query, bool overUdp)
    {
        if (query.Length < 12 || (query[2] & 0x80) != 0)
        {
            return null;
        }

        ushort id = BinaryPrimitives.ReadUInt16BigEndian(query);
        int opcode = (query[2] >> 3) & 0xF;
        bool recursionDesired = (query[2] & 0x01) != 0;
        if (opcode != 0)
        {
            return HeaderOnly(id, opcode, recursionDesired, rcode: 4);
        }

        if (BinaryPrimitives.ReadUInt16BigEndian(query[4..]) != 1
            || !TryReadName(query, 12, out string name, out int afterName)
            || afterName + 4 > query.Length)
        {
            return HeaderOnly(id, opcode, recursionDesired, rcode: 1);
        }

        // Look up case-insensitively, but echo the question as asked: some resolvers check the
        // case of the echoed name (DNS 0x20, draft-vixie-dnsext-dns0x20).
        string key = name.ToLowerInvariant();
        ushort qtype = BinaryPrimitives.ReadUInt16BigEndian(query[afterName..]);
        ushort qclass = BinaryPrimitives.ReadUInt16BigEndian(query[(afterName + 2)..]);

        List<IPAddress> answers = [];
        bool known;
        lock (_gate)
        {
            _queriedNames.Add(key);
            known = _records.TryGetValue(key, out List<IPAddress>? addresses);
            if (known && qclass == ClassIn)
            {
                foreach (IPAddress address in addresses!)
                {
                    bool isA = address.AddressFamily == AddressFamily.InterNetwork;
                    if (qtype == TypeAny || (qtype == TypeA && isA) || (qtype == TypeAaaa && !isA))
                    {
                        answers.Add(address);
                    }
                }
            }
        }

        int rcode = qclass != ClassIn ? 5 : known ? 0 : 3;
        byte[] encodedName = EncodeName(name);
        var response = new List<byte>(512);
        WriteHeader(response, id, opcode, recursionDesired, rcode, truncated: false, questions: 1, answers: (ushort)answers.Count);
        response.AddRange(encodedName);
        AddUInt16(response, qtype);
        AddUInt16(response, qclass);
        foreach (IPAddress address in answers)
        {
            byte[] data = address.GetAddressBytes();
            AddUInt16(response, 0xC00C); // pointer to the question name at offset 12 (RFC 1035 §4.1.4)
            AddUInt16(response, data.Length == 4 ? TypeA : TypeAaaa);
            AddUInt16(response, ClassIn);
            AddUInt16(response, (ushort)(TtlSeconds >> 16));
            AddUInt16(response, (ushort)TtlSeconds);
            AddUInt16(response, (ushort)data.Length);
            response.AddRange(data);
        }

        if (overUdp && response.Count > UdpLimit)
        {
            response.Clear();
            WriteHeader(response, id, opcode, recursionDesired, rcode, truncated: true, questions: 1, answers: 0);
            response.AddRange(encodedName);
            AddUInt16(response, qtype);
            AddUInt16(response, qclass);
        }

        return [.. response];
    }

    private void Add(string name, IPAddress address)
    {
        string key = Normalize(name);
        if (key.Length == 0 || EncodeName(key).Length > 255)
        {
            throw new ArgumentException($"'{name}' is not a usable DNS name.", nameof(name));
        }

        lock (_gate)
        {
            if (!_records.TryGetValue(key, out List<IPAddress>? list))
            {
                list = [];
                _records[key] = list;
            }

            list.Add(address);
        }
    }

    private async Task ServeUdpAsync()
    {
        var buffer = new byte[65535];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!_stop.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await _udp.ReceiveFromAsync(buffer, SocketFlags.None, any, _stop.Token).ConfigureAwait(false);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
                continue; // ICMP port unreachable from an earlier reply; keep serving.
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            byte[]? reply = Answer(buffer.AsSpan(0, received.ReceivedBytes), overUdp: true);
            if (reply is null)
            {
                continue;
            }

            Interlocked.Increment(ref _udpQueries);
            try
            {
                await _udp.SendToAsync(reply, SocketFlags.None, received.RemoteEndPoint, _stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                // The client went away; serve the next one.
            }
        }
    }

    private async Task ServeTcpAsync()
    {
        var connections = new List<Task>();
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _tcp.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                break;
            }

            connections.Add(ServeConnectionAsync(client));
            connections.RemoveAll(t => t.IsCompleted);
        }

        await Task.WhenAll(connections).ConfigureAwait(false);
    }

    private async Task ServeConnectionAsync(Socket client)
    {
        using (client)
        {
            var prefix = new byte[2];
            try
            {
                while (true)
                {
                    if (!await ReadExactlyAsync(client, prefix).ConfigureAwait(false))
                    {
                        return;
                    }

                    var message = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
                    if (!await ReadExactlyAsync(client, message).ConfigureAwait(false))
                    {
                        return;
                    }

                    byte[]? reply = Answer(message, overUdp: false);
                    if (reply is null)
                    {
                        continue;
                    }

                    Interlocked.Increment(ref _tcpQueries);
                    var framed = new byte[reply.Length + 2];
                    BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)reply.Length);
                    reply.CopyTo(framed, 2);
                    await client.SendAsync(framed, SocketFlags.None, _stop.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                // Connection closed or server stopping.
            }
        }
    }

    private async Task<bool> ReadExactlyAsync(Socket socket, byte[] buffer)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, _stop.Token).ConfigureAwait(false);
            if (n == 0)
            {
                return false;
            }

            read += n;
        }

        return true;
    }

    private static (Socket Udp, Socket Tcp) BindPair()
    {
        for (int attempt = 0; ; attempt++)
        {
            var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                tcp.Bind(udp.LocalEndPoint!);
                tcp.Listen(16);
                return (udp, tcp);
            }
            catch (SocketException) when (attempt < 50)
            {
                // The TCP side of this port is taken; try another port.
                udp.Dispose();
                tcp.Dispose();
            }
        }
    }

    /// <summary>Reads a possibly compressed name (RFC 1035 §4.1.4) into dotted form without the trailing dot, case kept.</summary>
    private static bool TryReadName(ReadOnlySpan<byte> message, int offset, out string name, out int end)
    {
        var builder = new StringBuilder();
        name = string.Empty;
        end = -1;
        int jumps = 0;
        int wireLength = 1;
        while (true)
        {
            if (offset >= message.Length)
            {
                return false;
            }

            byte length = message[offset];
            if ((length & 0xC0) == 0xC0)
            {
                if (offset + 1 >= message.Length || ++jumps > 16)
                {
                    return false;
                }

                if (end < 0)
                {
                    end = offset + 2;
                }

                offset = ((length & 0x3F) << 8) | message[offset + 1];
                continue;
            }

            if ((length & 0xC0) != 0)
            {
                return false; // extended label types (RFC 6891 §5) are not supported
            }

            if (length == 0)
            {
                if (end < 0)
                {
                    end = offset + 1;
                }

                name = builder.ToString();
                return true;
            }

            wireLength += length + 1;
            if (offset + 1 + length > message.Length || wireLength > 255
                || message.Slice(offset + 1, length).Contains((byte)'.'))
            {
                return false; // a dot inside a label could not be told apart from a separator
            }

            if (builder.Length > 0)
            {
                builder.Append('.');
            }

            foreach (byte b in message.Slice(offset + 1, length))
            {
                builder.Append((char)b);
            }

            offset += 1 + length;
        }
    }

    private static string Normalize(string name)
    {
        string trimmed = name.Trim();
        if (trimmed.EndsWith('.'))
        {
            trimmed = trimmed[..^1];
        }

        return trimmed.ToLowerInvariant();
    }

    private static byte[] EncodeName(string name)
    {
        var bytes = new List<byte>(name.Length + 2);
        if (name.Length > 0)
        {
            foreach (string label in name.Split('.'))
            {
                if (label.Length is 0 or > 63)
                {
                    throw new ArgumentException($"'{name}' has an empty label or one longer than 63 bytes.", nameof(name));
                }

                bytes.Add((byte)label.Length);
                foreach (char c in label)
                {
                    bytes.Add((byte)c);
                }
            }
        }

        bytes.Add(0);
        return [.. bytes];
    }

    private static byte[] HeaderOnly(ushort id, int opcode, bool recursionDesired, int rcode)
    {
        var response = new List<byte>(12);
        WriteHeader(response, id, opcode, recursionDesired, rcode, truncated: false, questions: 0, answers: 0);
        return [.. response];
    }

    private static void WriteHeader(List<byte> response, ushort id, int opcode, bool recursionDesired, int rcode, bool truncated, ushort questions, ushort answers)
    {
        // QR = 1, AA = 1 (authoritative for its names), RA = 0 (no recursion offered).
        int flags = 0x8000 | (opcode << 11) | 0x0400 | (truncated ? 0x0200 : 0) | (recursionDesired ? 0x0100 : 0) | rcode;
        AddUInt16(response, id);
        AddUInt16(response, (ushort)flags);
        AddUInt16(response, questions);
        AddUInt16(response, answers);
        AddUInt16(response, 0);
        AddUInt16(response, 0);
    }

    private static void AddUInt16(List<byte> bytes, ushort value)
    {
        bytes.Add((byte)(value >> 8));
        bytes.Add((byte)value);
    }
}
