using System.Net;
using System.Net.Sockets;
using Beemesh.Sidecar.Tunnel;

namespace Beemesh.Sidecar.Tests.Tunnel;

public sealed class StreamSplicerTests
{
    [Fact]
    public async Task Splice_CopiesBulkFromASocket_FlushesAtLeastOnce_AndPassesTheFinOn()
    {
        (Socket client, Socket server) = await ConnectedPairAsync();
        using var source = new NetworkStream(server, ownsSocket: true);
        var sink = new RecordingStream();
        byte[] payload = new byte[1 << 20];
        new Random(11).NextBytes(payload);
        long counted = 0;
        bool shutDown = false;

        Task splice = StreamSplicer.SpliceAsync(
            source,
            () => ValueTask.CompletedTask,
            sink,
            () =>
            {
                shutDown = true;
                return ValueTask.CompletedTask;
            },
            (forward, n) =>
            {
                if (forward)
                {
                    Interlocked.Add(ref counted, n);
                }
            },
            CancellationToken.None);
        using (client)
        {
            await client.SendAsync(payload);
            client.Shutdown(SocketShutdown.Send);
            await splice.WaitAsync(TimeSpan.FromSeconds(10)); // the recorder's reads end at once, so both directions end
        }

        Assert.Equal(payload, sink.All);
        Assert.Equal(payload.Length, Interlocked.Read(ref counted));
        Assert.True(sink.Flushes >= 1, "the last chunk must be flushed");
        Assert.True(shutDown, "the source's FIN must end the sink's direction");
        Assert.All(sink.Writes, w => Assert.InRange(w.Length, 1, 64 * 1024));
    }

    private static async Task<(Socket Client, Socket Server)> ConnectedPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Task<Socket> accept = listener.AcceptAsync();
        await client.ConnectAsync(listener.LocalEndPoint!);
        return (client, await accept);
    }
}
