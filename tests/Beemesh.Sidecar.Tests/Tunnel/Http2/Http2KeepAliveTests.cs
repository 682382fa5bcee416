using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Threading.Channels;
using Beemesh.Sidecar.Tunnel.Http2;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Sidecar.Tests.Tunnel.Http2;

/// <summary>
/// The keep-alive and the PING budget of <see cref="Http2Connection"/>, against a raw peer on a
/// loopback socket with a fake clock: every step waits for the connection's answer to what the
/// peer sent before the clock moves, so each read is stamped at a known time.
/// </summary>
public sealed class Http2KeepAliveTests
{
    // A hang bound only: every wait below ends on an event, this only turns a hang into a failure.
    private static readonly TimeSpan Functional = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_silent_caller_gets_a_ping_after_the_interval_and_its_streams_fail_a_timeout_later()
    {
        await using RawCaller peer = await RawCaller.StartAsync();
        Http2Stream stream = await peer.OpenStreamAsync(1);

        peer.Time.Advance(TimeSpan.FromSeconds(9.9));
        Assert.True(peer.Server.IsOpen);
        peer.Time.Advance(TimeSpan.FromSeconds(0.1));
        (FrameHeader header, byte[] payload) = await peer.ReadFrameAsync();
        // The PING on the wire: 8 bytes, type 6, no flags, stream 0, our counter as its data.
        Assert.Equal(HpackTests.Hex("000008 06 00 00000000 0000000000000001"), Frame(header, payload));

        peer.Time.Advance(TimeSpan.FromSeconds(9.9));
        Assert.True(peer.Server.IsOpen);
        Assert.Empty(peer.Lost);
        peer.Time.Advance(TimeSpan.FromSeconds(0.1));
        await peer.Server.Completion.WaitAsync(Functional);
        Assert.False(peer.Server.IsOpen);
        Assert.Equal(Http2CloseReason.KeepAliveTimeout, peer.Server.LostReason);
        Assert.Equal([(Http2CloseReason.KeepAliveTimeout, 1)], peer.Lost);
        await Assert.ThrowsAnyAsync<IOException>(() => stream.ReadAsync(new byte[1]).AsTask().WaitAsync(Functional));
        Assert.Equal(0, await peer.Raw.ReadAsync(new byte[64]).AsTask().WaitAsync(Functional)); // the transport was closed
    }

    [Fact]
    public async Task A_connection_that_keeps_receiving_is_never_pinged()
    {
        await using RawCaller peer = await RawCaller.StartAsync();
        Http2Stream stream = await peer.OpenStreamAsync(1);
        byte[] one = new byte[1];
        for (int i = 0; i < 8; i++)
        {
            // 40 s in all, four keep-alive intervals, never 10 s without a frame.
            peer.Time.Advance(TimeSpan.FromSeconds(5));
            await peer.SendAsync(w => FrameWriter.Data(w, 1, "x"u8, endStream: false));
            Assert.Equal(1, await stream.ReadAsync(one).AsTask().WaitAsync(Functional));
        }

        // Our own PING marks the end: any keep-alive PING would have been queued before its ACK.
        await peer.SendAsync(w => FrameWriter.Ping(w, 0xfeed, ack: false));
        List<(FrameHeader Header, byte[] Payload)> frames = await peer.ReadUntilPingAckAsync(0xfeed);
        Assert.DoesNotContain(frames, f => f.Header.Type == FrameType.Ping && !f.Header.Has(FrameFlags.Ack));
        Assert.True(peer.Server.IsOpen);
        Assert.Empty(peer.Lost);
    }

    [Fact]
    public async Task An_answered_ping_keeps_the_connection_and_the_next_silence_pings_again()
    {
        await using RawCaller peer = await RawCaller.StartAsync();
        peer.Time.Advance(TimeSpan.FromSeconds(10));
        (FrameHeader header, byte[] payload) = await peer.ReadFrameAsync();
        Assert.Equal(FrameType.Ping, header.Type);
        ulong data = BinaryPrimitives.ReadUInt64BigEndian(payload);

        // The ACK, then a PING of ours whose ACK shows the connection has read the first.
        await peer.SendAsync(w =>
        {
            FrameWriter.Ping(w, data, ack: true);
            FrameWriter.Ping(w, 0x77, ack: false);
        });
        await peer.ReadUntilPingAckAsync(0x77);

        peer.Time.Advance(TimeSpan.FromSeconds(10)); // the old PING's deadline: answered, and 10 s silent since
        Assert.True(peer.Server.IsOpen);
        (header, payload) = await peer.ReadFrameAsync();
        Assert.Equal(HpackTests.Hex("000008 06 00 00000000 0000000000000002"), Frame(header, payload));
        Assert.Empty(peer.Lost);
    }

    [Fact]
    public async Task A_ping_flood_past_the_budget_ends_the_connection_with_enhance_your_calm()
    {
        await using RawCaller peer = await RawCaller.StartAsync();
        Http2Stream stream = await peer.OpenStreamAsync(1);
        await peer.SendAsync(w =>
        {
            for (ulong i = 1; i <= 10; i++)
            {
                FrameWriter.Ping(w, i, ack: false);
            }
        });
        List<(FrameHeader Header, byte[] Payload)> frames = await peer.ReadUntilPingAckAsync(10);
        Assert.Equal(10, frames.Count(f => f.Header.Type == FrameType.Ping));
        Assert.Equal(HpackTests.Hex("000008 06 01 00000000 0000000000000001"), Frame(frames[0].Header, frames[0].Payload));
        Assert.True(peer.Server.IsOpen);

        // One second refills two: the third of these is one too many.
        peer.Time.Advance(TimeSpan.FromSeconds(1));
        await peer.SendAsync(w =>
        {
            for (ulong i = 11; i <= 13; i++)
            {
                FrameWriter.Ping(w, i, ack: false);
            }
        });
        frames = await peer.ReadUntilAsync(FrameType.GoAway);
        Assert.Equal([11UL, 12UL], frames.Where(f => f.Header.Type == FrameType.Ping).Select(f => BinaryPrimitives.ReadUInt64BigEndian(f.Payload)));
        (FrameHeader Header, byte[] Payload) goAway = frames[^1];
        Assert.Equal((1, Http2ErrorCode.EnhanceYourCalm), FrameReader.GoAway(goAway.Header, goAway.Payload));
        await peer.Server.Completion.WaitAsync(Functional);
        Assert.Equal(Http2CloseReason.PingFlood, peer.Server.LostReason);
        Assert.Equal([(Http2CloseReason.PingFlood, 1)], peer.Lost);
        await Assert.ThrowsAnyAsync<IOException>(() => stream.ReadAsync(new byte[1]).AsTask().WaitAsync(Functional));
    }

    [Fact]
    public async Task A_client_pings_a_silent_server_and_closes_a_timeout_later()
    {
        (Socket raw, Socket clientSocket) = await Http2ConnectionTests.SocketPairAsync();
        using var rawStream = new NetworkStream(raw, ownsSocket: true);
        var time = new FakeTimeProvider();
        var lost = new List<Http2CloseReason>();
        var options = new Http2ConnectionOptions
        {
            KeepAliveInterval = TimeSpan.FromSeconds(30),
            KeepAliveTimeout = TimeSpan.FromSeconds(5),
            TimeProvider = time,
            OnLost = (_, why, _) => lost.Add(why),
        };
        await using Http2Connection client = Http2Connection.StartClient(new NetworkStream(clientSocket, ownsSocket: true), options);
        await rawStream.ReadExactlyAsync(new byte[Http2Protocol.ClientPreface.Length]).AsTask().WaitAsync(Functional);
        var w = new ArrayBufferWriter<byte>();
        FrameWriter.Settings(w, []);
        await rawStream.WriteAsync(w.WrittenMemory);
        await ReadFramesUntilAsync(rawStream, h => h.Type == FrameType.Settings && h.Has(FrameFlags.Ack)).WaitAsync(Functional);

        time.Advance(TimeSpan.FromSeconds(29));
        time.Advance(TimeSpan.FromSeconds(1));
        await ReadFramesUntilAsync(rawStream, h => h.Type == FrameType.Ping && !h.Has(FrameFlags.Ack)).WaitAsync(Functional);
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.True(client.IsOpen);
        time.Advance(TimeSpan.FromSeconds(1));
        await client.Completion.WaitAsync(Functional);
        Assert.Equal([Http2CloseReason.KeepAliveTimeout], lost);
    }

    private static byte[] Frame(FrameHeader header, byte[] payload)
    {
        byte[] frame = new byte[Http2Protocol.FrameHeaderLength + payload.Length];
        header.Write(frame);
        payload.CopyTo(frame, Http2Protocol.FrameHeaderLength);
        return frame;
    }

    private static async Task<(FrameHeader, byte[])> ReadOneAsync(Stream raw)
    {
        byte[] head = new byte[Http2Protocol.FrameHeaderLength];
        await raw.ReadExactlyAsync(head);
        FrameHeader header = FrameHeader.Read(head);
        byte[] payload = new byte[header.Length];
        await raw.ReadExactlyAsync(payload);
        return (header, payload);
    }

    private static async Task ReadFramesUntilAsync(Stream raw, Func<FrameHeader, bool> last)
    {
        while (!last((await ReadOneAsync(raw)).Item1))
        {
        }
    }

    /// <summary>A raw HTTP/2 client facing our server, which runs on a fake clock with a 10 s keep-alive.</summary>
    private sealed class RawCaller : IAsyncDisposable
    {
        private RawCaller(NetworkStream raw, Http2Connection server, Channel<Http2Stream> accepted, FakeTimeProvider time, List<(Http2CloseReason, int)> lost)
        {
            Raw = raw;
            Server = server;
            Accepted = accepted;
            Time = time;
            Lost = lost;
        }

        public NetworkStream Raw { get; }

        public Http2Connection Server { get; }

        public Channel<Http2Stream> Accepted { get; }

        public FakeTimeProvider Time { get; }

        public List<(Http2CloseReason Reason, int Streams)> Lost { get; }

        public static async Task<RawCaller> StartAsync()
        {
            (Socket raw, Socket serverSocket) = await Http2ConnectionTests.SocketPairAsync();
            var time = new FakeTimeProvider();
            var lost = new List<(Http2CloseReason, int)>();
            var accepted = Channel.CreateUnbounded<Http2Stream>();
            var options = new Http2ConnectionOptions
            {
                KeepAliveInterval = TimeSpan.FromSeconds(10),
                KeepAliveTimeout = TimeSpan.FromSeconds(10),
                TimeProvider = time,
                OnLost = (_, why, streams) =>
                {
                    lock (lost)
                    {
                        lost.Add((why, streams));
                    }
                },
            };
            Http2Connection server = Http2Connection.StartServer(new NetworkStream(serverSocket, ownsSocket: true), s => accepted.Writer.WriteAsync(s).AsTask(), options);
            var caller = new RawCaller(new NetworkStream(raw, ownsSocket: true), server, accepted, time, lost);
            await caller.SendAsync(w =>
            {
                w.Write(Http2Protocol.ClientPreface);
                FrameWriter.Settings(w, []);
            });
            // The ACK of our SETTINGS: the server has read them.
            await caller.ReadUntilAsync(FrameType.Settings, FrameFlags.Ack);
            return caller;
        }

        public async Task SendAsync(Action<ArrayBufferWriter<byte>> build)
        {
            var w = new ArrayBufferWriter<byte>();
            build(w);
            await Raw.WriteAsync(w.WrittenMemory).AsTask().WaitAsync(Functional);
        }

        /// <summary>Opens CONNECT stream <paramref name="id"/>, answers it 200 on the server side and reads the answer.</summary>
        public async Task<Http2Stream> OpenStreamAsync(int id)
        {
            var block = new ArrayBufferWriter<byte>();
            HpackEncoder.Encode(block, [new HeaderField(":method", "CONNECT"), new HeaderField(":authority", "10.0.0.2:1")]);
            await SendAsync(w => FrameWriter.Headers(w, id, block.WrittenSpan, endStream: false, 16_384));
            Http2Stream stream = await Accepted.Reader.ReadAsync().AsTask().WaitAsync(Functional);
            await stream.RespondAsync(200).WaitAsync(Functional);
            await ReadUntilAsync(FrameType.Headers);
            return stream;
        }

        public Task<(FrameHeader Header, byte[] Payload)> ReadFrameAsync() => ReadOneAsync(Raw).WaitAsync(Functional);

        public Task<List<(FrameHeader Header, byte[] Payload)>> ReadUntilAsync(FrameType type, FrameFlags? flags = null) =>
            ReadUntilAsync(f => f.Header.Type == type && (flags is null || f.Header.Flags == flags));

        public Task<List<(FrameHeader Header, byte[] Payload)>> ReadUntilPingAckAsync(ulong data) =>
            ReadUntilAsync(f => f.Header.Type == FrameType.Ping && f.Header.Has(FrameFlags.Ack) && BinaryPrimitives.ReadUInt64BigEndian(f.Payload) == data);

        private async Task<List<(FrameHeader Header, byte[] Payload)>> ReadUntilAsync(Func<(FrameHeader Header, byte[] Payload), bool> last)
        {
            var frames = new List<(FrameHeader, byte[])>();
            while (true)
            {
                (FrameHeader, byte[]) frame = await ReadFrameAsync();
                frames.Add(frame);
                if (last(frame))
                {
                    return frames;
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await Server.DisposeAsync();
            await Raw.DisposeAsync();
        }
    }
}
