using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Beemesh.Sidecar.Mesh;

/// <summary>
/// The DNS server a meshed workload's stack forwards 10.0.2.3 to: A queries for
/// <c>NAME.NAMESPACE.svc.cluster.local</c> and <c>NAME.NAMESPACE</c> are answered with the
/// workload's mesh address; everything else is relayed to the host's resolver unchanged.
/// Listens on 127.0.0.1 (UDP). Malformed queries are dropped and counted.
/// </summary>
public sealed class MeshDnsServer : IAsyncDisposable
{
    private const int Ttl = 5; // short: mesh addresses can move when workloads restart
    private readonly UdpClient _socket = new(new IPEndPoint(IPAddress.Loopback, 0));
    private readonly Func<string, IPAddress?> _resolve;
    private readonly IPEndPoint _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _serving;
    private long _dropped;

    /// <summary>Answers mesh names with <paramref name="resolve"/> and forwards every other query to <paramref name="upstream"/>.</summary>
    public MeshDnsServer(Func<string, IPAddress?> resolve, IPEndPoint upstream)
    {
        _resolve = resolve;
        _upstream = upstream;
        _serving = ServeAsync();
    }

    /// <summary>Where the stack should send DNS queries.</summary>
    public IPEndPoint EndPoint => (IPEndPoint)_socket.Client.LocalEndPoint!;

    /// <summary>Queries dropped as malformed.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

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

            byte[]? answer = TryAnswer(query.Buffer);
            if (answer is not null)
            {
                await _socket.SendAsync(answer, query.RemoteEndPoint, _stop.Token).ConfigureAwait(false);
            }
            else if (query.Buffer.Length >= 12)
            {
                _ = RelayAsync(query.Buffer, query.RemoteEndPoint);
            }
            else
            {
                Interlocked.Increment(ref _dropped);
            }
        }
    }

    /// <summary>An answer for a mesh name, or null to relay (or drop) the query.</summary>
    private byte[]? TryAnswer(byte[] q)
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
        try
        {
            using var upstream = new UdpClient(_upstream.AddressFamily);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            await upstream.SendAsync(query, _upstream, timeout.Token).ConfigureAwait(false);
            var answer = await upstream.ReceiveAsync(timeout.Token).ConfigureAwait(false);
            await _socket.SendAsync(answer.Buffer, client, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // The client retries; nothing to tell it.
        }
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
