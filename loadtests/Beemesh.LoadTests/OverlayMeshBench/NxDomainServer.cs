using System.Net;
using System.Net.Sockets;

namespace Beemesh.LoadTests.OverlayMeshBench;

/// <summary>
/// A name server that knows no names: every well-formed query gets NXDOMAIN at once. It stands
/// for a node's resolver in namespaces that have none, so a query the mesh DNS relays for a name
/// it does not know yet is answered as a real resolver would, instead of timing out. Malformed
/// datagrams are dropped.
/// </summary>
public static class NxDomainServer
{
    /// <summary>Printed once the socket is bound.</summary>
    public const string ReadyLine = "nxdomain-server listening";

    /// <summary>Serves on UDP <paramref name="bind"/>:<paramref name="port"/> until cancelled.</summary>
    public static async Task<int> RunAsync(IPAddress bind, int port, CancellationToken cancellationToken)
    {
        using var socket = new UdpClient(new IPEndPoint(bind, port));
        Console.Out.WriteLine($"{ReadyLine} on {bind}:{port}");
        Console.Out.Flush();
        try
        {
            while (true)
            {
                UdpReceiveResult query = await socket.ReceiveAsync(cancellationToken).ConfigureAwait(false);
                if (Answer(query.Buffer) is { } answer)
                {
                    await socket.SendAsync(answer, query.RemoteEndPoint, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
    }

    /// <summary>The NXDOMAIN answer to <paramref name="query"/> (header and question only), or null when it is not a one-question query.</summary>
    public static byte[]? Answer(ReadOnlySpan<byte> query)
    {
        if (query.Length < 12 || (query[2] & 0x80) != 0 || query[4] != 0 || query[5] != 1)
        {
            return null;
        }

        int i = 12;
        while (i < query.Length && query[i] != 0)
        {
            if ((query[i] & 0xC0) != 0)
            {
                return null;
            }

            i += 1 + query[i];
        }

        int end = i + 5; // the root label, QTYPE, QCLASS
        if (end > query.Length)
        {
            return null;
        }

        byte[] answer = query[..end].ToArray();
        answer[2] = (byte)(0x80 | (query[2] & 0x79)); // QR, keep opcode and RD, clear AA and TC
        answer[3] = 0x83; // RA, RCODE 3 (NXDOMAIN)
        answer.AsSpan(6, 6).Clear(); // no answer, authority or additional records
        return answer;
    }
}
