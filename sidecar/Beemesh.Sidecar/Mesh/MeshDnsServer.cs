using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Beemesh.Sidecar.Mesh;

/// <summary>
/// A DNS server (UDP) for mesh names. For <c>beemesh run</c> it is where the workload's stack
/// forwards 10.0.2.3, and mesh names are answered with the workload's mesh address; for the
/// injected sidecar (<c>beemesh sidecar --dns</c>) it is the pod's resolver, and mesh names are
/// answered with the service's loopback address. Whatever the resolve function answers is given
/// to A queries (any other type for a mesh name, AAAA included, gets an empty NOERROR answer);
/// every other query is relayed to the upstream resolver unchanged, and answered with SERVFAIL
/// when that resolver refuses or stays silent. Malformed queries (shorter than a header, not
/// exactly one well-formed question, or a response) are dropped and counted.
/// </summary>
public sealed class MeshDnsServer : IAsyncDisposable
{
    private const int Ttl = 5; // short: mesh addresses can move when workloads restart
    private readonly UdpClient _socket;
    private readonly Func<string, IPAddress?> _resolve;
    private readonly IPEndPoint _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _serving;
    private readonly TimeSpan _upstreamTimeout;
    private long _dropped;
    private long _upstreamFailures;

    /// <summary>How long a relayed query waits for the upstream resolver before the client gets SERVFAIL.</summary>
    public static readonly TimeSpan DefaultUpstreamTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Answers mesh names with <paramref name="resolve"/> and forwards every other query to
    /// <paramref name="upstream"/>; a relayed query the upstream refuses (ICMP port unreachable) or
    /// does not answer within <paramref name="upstreamTimeout"/> (default
    /// <see cref="DefaultUpstreamTimeout"/>) is answered with SERVFAIL. Listens on
    /// <paramref name="listen"/> (default 127.0.0.1 on a free port); throws
    /// <see cref="SocketException"/> when that cannot be bound.
    /// </summary>
    public MeshDnsServer(Func<string, IPAddress?> resolve, IPEndPoint upstream, TimeSpan? upstreamTimeout = null, IPEndPoint? listen = null)
    {
        _socket = new UdpClient(listen ?? new IPEndPoint(IPAddress.Loopback, 0));
        _resolve = resolve;
        _upstream = upstream;
        _upstreamTimeout = upstreamTimeout ?? DefaultUpstreamTimeout;
        _serving = ServeAsync();
    }

    /// <summary>Where the stack should send DNS queries.</summary>
    public IPEndPoint EndPoint => (IPEndPoint)_socket.Client.LocalEndPoint!;

    /// <summary>Queries dropped as malformed.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Relayed queries answered with SERVFAIL because the upstream refused or did not answer in time.</summary>
    public long UpstreamFailures => Interlocked.Read(ref _upstreamFailures);

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            UdpReceiveResult query;
            try
            {
                query = await _socket.ReceiveAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stop.IsCancellationRequested)
                {
                    return;
                }

                continue;
            }

            if (QuestionEnd(query.Buffer) == 0 || (query.Buffer[2] & 0x80) != 0)
            {
                Interlocked.Increment(ref _dropped);
                continue;
            }

            byte[]? answer = TryAnswer(query.Buffer);
            if (answer is not null)
            {
                try
                {
                    await _socket.SendAsync(answer, query.RemoteEndPoint, _stop.Token).ConfigureAwait(false);
                }
                catch (SocketException)
                {
                    // The client is gone (ICMP unreachable): keep serving the others.
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
                {
                    return;
                }
            }
            else
            {
                _ = RelayAsync(query.Buffer, query.RemoteEndPoint);
            }
        }
    }

    /// <summary>An answer for a mesh name, or null to relay the query.</summary>
    internal byte[]? TryAnswer(byte[] q)
    {
        if (q.Length < 12 || (q[2] & 0x80) != 0 || BinaryPrimitives.ReadUInt16BigEndian(q.AsSpan(4)) != 1)
        {
            return null;
        }

        var name = new StringBuilder();
        int i = 12;
        while (i < q.Length && q[i] != 0)
        {
            int len = q[i];
            if ((len & 0xC0) != 0 || i + 1 + len > q.Length || name.Length > 255)
            {
                return null;
            }

            name.Append(Encoding.ASCII.GetString(q, i + 1, len)).Append('.');
            i += 1 + len;
        }

        if (i + 5 > q.Length)
        {
            return null;
        }

        ushort type = BinaryPrimitives.ReadUInt16BigEndian(q.AsSpan(i + 1));
        int questionEnd = i + 5;
        var address = _resolve(name.ToString());
        if (address is null)
        {
            return null;
        }

        bool a = type == 1 && address.AddressFamily == AddressFamily.InterNetwork;
        var reply = new byte[questionEnd + (a ? 16 : 0)];
        q.AsSpan(0, questionEnd).CopyTo(reply);
        reply[2] = (byte)(0x84 | (q[2] & 0x01)); // QR, AA, keep RD
        reply[3] = 0x80; // RA, NOERROR (an AAAA query for a mesh name gets an empty answer)
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(6), (ushort)(a ? 1 : 0));
        BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(8), 0);
        if (a)
        {
            var r = reply.AsSpan(questionEnd);
            BinaryPrimitives.WriteUInt16BigEndian(r, 0xC00C); // pointer to the question's name
            BinaryPrimitives.WriteUInt16BigEndian(r[2..], 1);
            BinaryPrimitives.WriteUInt16BigEndian(r[4..], 1);
            BinaryPrimitives.WriteUInt32BigEndian(r[6..], Ttl);
            BinaryPrimitives.WriteUInt16BigEndian(r[10..], 4);
            address.TryWriteBytes(r[12..], out _);
        }

        return reply;
    }

    private async Task RelayAsync(byte[] query, IPEndPoint client)
    {
        byte[]? answer;
        try
        {
            using var upstream = new UdpClient(_upstream.AddressFamily);
            // Connected, so that an ICMP port unreachable from the upstream ends the wait at once.
            upstream.Connect(_upstream);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(_upstreamTimeout);
            await upstream.SendAsync(query, timeout.Token).ConfigureAwait(false);
            answer = (await upstream.ReceiveAsync(timeout.Token).ConfigureAwait(false)).Buffer;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            if (_stop.IsCancellationRequested)
            {
                return;
            }

            // No resolver answered: say so (SERVFAIL) rather than leave the client to wait out its
            // own timeout (5 s for glibc) before it asks again. A name that became a mesh name in
            // the meantime is answered from the mesh instead.
            Interlocked.Increment(ref _upstreamFailures);
            answer = TryAnswer(query) ?? ServerFailure(query);
        }

        try
        {
            await _socket.SendAsync(answer, client, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopping, or the client is gone: nothing to tell it.
        }
    }

    /// <summary>
    /// A SERVFAIL response (RFC 1035 section 4.1.1, RCODE 2) to <paramref name="query"/>: its ID,
    /// opcode, RD bit and question, with no records.
    /// </summary>
    internal static byte[] ServerFailure(ReadOnlySpan<byte> query)
    {
        int questionEnd = QuestionEnd(query);
        var reply = new byte[questionEnd > 0 ? questionEnd : 12];
        query[..reply.Length].CopyTo(reply);
        reply[2] = (byte)(0x80 | (query[2] & 0x79)); // QR, the opcode and RD kept; AA and TC clear
        reply[3] = 0x82; // RA, RCODE 2 (server failure)
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(4), (ushort)(questionEnd > 0 ? 1 : 0));
        reply.AsSpan(6, 6).Clear(); // no answer, authority or additional records
        return reply;
    }

    /// <summary>Where the single question of <paramref name="query"/> ends, or 0 when it has not exactly one well-formed question.</summary>
    private static int QuestionEnd(ReadOnlySpan<byte> query)
    {
        if (query.Length < 12 || BinaryPrimitives.ReadUInt16BigEndian(query[4..]) != 1)
        {
            return 0;
        }

        int i = 12;
        while (i < query.Length && query[i] != 0)
        {
            if ((query[i] & 0xC0) != 0)
            {
                return 0;
            }

            i += 1 + query[i];
        }

        return i + 5 <= query.Length ? i + 5 : 0;
    }

    /// <summary>Stops serving.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        try
        {
            await _serving.ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }
}
