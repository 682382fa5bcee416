using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Beemesh.EndToEnd.Tests.Slirp;

/// <summary>
/// A minimal UDP name server on port 53 of a random 127.53.x.y address: slirp4netns takes its
/// upstream only from resolv.conf and always on port 53, so the DNS comparison needs a server
/// there. It answers A questions for one name (RFC 1035 §4.1), NOERROR with no answer for other
/// types of that name, NXDOMAIN for other names; everything else is ignored.
/// </summary>
public sealed class SlirpDnsResponder : IDisposable
{
    private readonly Socket _socket;
    private readonly string _name;
    private readonly IPAddress _address;
    private readonly Task _loop;
    private readonly List<string> _queried = [];

    /// <summary>Binds port 53 on a free loopback address and starts answering.</summary>
    /// <param name="name">The one name that exists, lower case without trailing dot.</param>
    /// <param name="address">Its IPv4 address.</param>
    public SlirpDnsResponder(string name, IPAddress address)
    {
        _name = name;
        _address = address;
        _socket = BindFree();
        ListenAddress = ((IPEndPoint)_socket.LocalEndPoint!).Address;
        _loop = Task.Run(ServeAsync);
    }

    /// <summary>The loopback address the server listens on (port 53).</summary>
    public IPAddress ListenAddress { get; }

    /// <summary>Names asked for so far, lower case.</summary>
    public IReadOnlyList<string> QueriedNames
    {
        get
        {
            lock (_queried)
            {
                return [.. _queried];
            }
        }
    }

    /// <summary>Closes the socket.</summary>
    public void Dispose()
    {
        _socket.Dispose();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // The loop ends with the socket's disposal.
        }
    }

    private static Socket BindFree()
    {
        for (int attempt = 0; ; attempt++)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            var address = new IPAddress(new byte[] { 127, 53, (byte)Random.Shared.Next(1, 255), (byte)Random.Shared.Next(1, 255) });
            try
            {
                s.Bind(new IPEndPoint(address, 53));
                return s;
            }
            catch (SocketException) when (attempt < 20)
            {
                s.Dispose();
            }
        }
    }

    private async Task ServeAsync()
    {
        var buffer = new byte[1500];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (true)
        {
            SocketReceiveFromResult r;
            try
            {
                r = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            byte[]? reply = Answer(buffer.AsSpan(0, r.ReceivedBytes));
            if (reply is not null)
            {
                await _socket.SendToAsync(reply, SocketFlags.None, r.RemoteEndPoint);
            }
        }
    }

    private byte[]? Answer(ReadOnlySpan<byte> query)
    {
        if (query.Length < 12 || (query[2] & 0x80) != 0 || BinaryPrimitives.ReadUInt16BigEndian(query[4..]) != 1)
        {
            return null;
        }

        // Question: labels up to the root label, then QTYPE and QCLASS (RFC 1035 §4.1.2).
        var name = new StringBuilder();
        int at = 12;
        while (at < query.Length && query[at] != 0)
        {
            int len = query[at];
            if (len > 63 || at + 1 + len > query.Length)
            {
                return null;
            }

            name.Append(name.Length > 0 ? "." : "").Append(Encoding.ASCII.GetString(query.Slice(at + 1, len)));
            at += 1 + len;
        }

        int questionEnd = at + 5;
        if (questionEnd > query.Length)
        {
            return null;
        }

        ushort type = BinaryPrimitives.ReadUInt16BigEndian(query[(at + 1)..]);
        string asked = name.ToString().ToLowerInvariant();
        lock (_queried)
        {
            _queried.Add(asked);
        }

        bool known = asked == _name;
        bool answer = known && type == 1;
        var reply = new byte[questionEnd + (answer ? 16 : 0)];
        query[..questionEnd].CopyTo(reply);
        reply[2] = (byte)(0x80 | (query[2] & 0x01)); // QR, echo RD
        reply[3] = (byte)(0x80 | (known ? 0 : 3)); // RA; NXDOMAIN for unknown names
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(6), (ushort)(answer ? 1 : 0));
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(8), 0);
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(10), 0);
        if (answer)
        {
            Span<byte> rr = reply.AsSpan(questionEnd);
            BinaryPrimitives.WriteUInt16BigEndian(rr, 0xC00C); // pointer to the question name
            BinaryPrimitives.WriteUInt16BigEndian(rr[2..], 1); // A
            BinaryPrimitives.WriteUInt16BigEndian(rr[4..], 1); // IN
            BinaryPrimitives.WriteUInt32BigEndian(rr[6..], 60);
            BinaryPrimitives.WriteUInt16BigEndian(rr[10..], 4);
            _address.TryWriteBytes(rr[12..], out _);
        }

        return reply;
    }
}
