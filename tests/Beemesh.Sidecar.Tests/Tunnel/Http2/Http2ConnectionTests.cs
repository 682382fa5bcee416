using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Beemesh.Sidecar.Tunnel;
using Beemesh.Sidecar.Tunnel.Http2;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Beemesh.Sidecar.Tests.Tunnel.Http2;

/// <summary>
/// The connection driver over real loopback sockets: our client against our server, each against
/// a peer we did not write (HttpClient, Kestrel), and raw bad frames.
/// </summary>
public sealed class Http2ConnectionTests
{
    // A hang bound only: every wait below ends on an event, this only turns a hang into a failure.
    private static readonly TimeSpan Functional = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_tunnel_carries_bytes_both_ways_and_half_closes_each_way(bool direct)
    {
        await using var pair = await Pair.StartAsync(direct: direct);
        await using Http2Stream client = await pair.Client.ConnectAsync("10.0.0.2:8080").WaitAsync(Functional);
        Http2Stream server = await pair.Accepted.Reader.ReadAsync().AsTask().WaitAsync(Functional);
        Assert.Equal(200, client.Status);
        Assert.Equal("10.0.0.2:8080", server.Authority);

        await client.WriteAsync("hello"u8.ToArray());
        await client.ShutdownWriteAsync();
        Assert.Equal("hello", await ReadToEndAsync(server));

        // The server's direction is still open after the client's half-close.
        await server.WriteAsync("world"u8.ToArray());
        await server.ShutdownWriteAsync();
        Assert.Equal("world", await ReadToEndAsync(client));
        Assert.Equal(0, pair.Client.ActiveStreams);
        await server.DisposeAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Bulk_flows_both_ways_pass_through_small_windows(bool direct)
    {
        var small = new Http2ConnectionOptions { InitialStreamWindow = 65_535, ConnectionWindow = 65_535, MaxFrameSize = 16_384, WriteHighWater = 32 * 1024, ReadThread = direct };
        await using var pair = await Pair.StartAsync(small, small, direct: direct);
        byte[] up = new byte[3 << 20];
        byte[] down = new byte[2 << 20];
        new Random(1).NextBytes(up);
        new Random(2).NextBytes(down);
        await using Http2Stream client = await pair.Client.ConnectAsync("10.0.0.2:9000").WaitAsync(Functional);
        await using Http2Stream server = await pair.Accepted.Reader.ReadAsync().AsTask().WaitAsync(Functional);

        Task<byte[]> serverReads = ReadAllAsync(server);
        Task<byte[]> clientReads = ReadAllAsync(client);
        Task clientWrites = WriteAllAsync(client, up);
        Task serverWrites = WriteAllAsync(server, down);
        await Task.WhenAll(clientWrites, serverWrites).WaitAsync(Functional);
        Assert.Equal(up, await serverReads.WaitAsync(Functional));
        Assert.Equal(down, await clientReads.WaitAsync(Functional));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Many_streams_share_one_connection(bool direct)
    {
        await using var pair = await Pair.StartAsync(echo: true, direct: direct);
        var flows = Enumerable.Range(0, 50).Select(async n =>
        {
            await using Http2Stream stream = await pair.Client.ConnectAsync($"10.0.0.2:{8000 + n}");
            byte[] payload = new byte[10_000 + n];
            new Random(n).NextBytes(payload);
            await WriteAllAsync(stream, payload);
            Assert.Equal(payload, await ReadAllAsync(stream));
        });
        await Task.WhenAll(flows).WaitAsync(Functional);
        Assert.Equal(0, pair.Client.ActiveStreams);
    }

    [Fact]
    public async Task Bytes_a_disposed_stream_never_read_go_back_to_the_connection_window()
    {
        // The client's connection window is one frame: while the unread frame held it, no other
        // stream could receive a byte.
        var client = new Http2ConnectionOptions { ConnectionWindow = 65_535, InitialStreamWindow = 1 << 20 };
        await using var pair = await Pair.StartAsync(client);
        Http2Stream first = await pair.Client.ConnectAsync("10.0.0.2:1").WaitAsync(Functional);
        await using Http2Stream firstServer = await pair.Accepted.Reader.ReadAsync().AsTask().WaitAsync(Functional);
        await using Http2Stream second = await pair.Client.ConnectAsync("10.0.0.2:2").WaitAsync(Functional);
        await using Http2Stream secondServer = await pair.Accepted.Reader.ReadAsync().AsTask().WaitAsync(Functional);

        await firstServer.WriteAsync(new byte[65_535]); // one DATA frame: the whole connection window
        await firstServer.FlushAsync();
        Assert.Equal(1, await first.ReadAsync(new byte[1]).AsTask().WaitAsync(Functional));
        await first.DisposeAsync();

        await secondServer.WriteAsync("after"u8.ToArray()).AsTask().WaitAsync(Functional);
        await secondServer.FlushAsync();
        byte[] got = new byte[5];
        await second.ReadExactlyAsync(got).AsTask().WaitAsync(Functional);
        Assert.Equal("after"u8.ToArray(), got);
    }

    [Fact]
    public async Task A_refusal_status_reaches_the_client_and_closes_the_stream()
    {
        await using var pair = await Pair.StartAsync(status: 403);
        await using Http2Stream client = await pair.Client.ConnectAsync("10.0.0.2:22").WaitAsync(Functional);
        Assert.Equal(403, client.Status);
        Assert.Equal(0, await client.ReadAsync(new byte[16]).AsTask().WaitAsync(Functional));
    }

    [Fact]
    public async Task A_reset_fails_the_other_side_and_cancels_its_token()
    {
        await using var pair = await Pair.StartAsync();
        Http2Stream client = await pair.Client.ConnectAsync("10.0.0.2:8080").WaitAsync(Functional);
        await using Http2Stream server = await pair.Accepted.Reader.ReadAsync().AsTask().WaitAsync(Functional);
        var aborted = new TaskCompletionSource();
        server.Aborted.Register(() => aborted.TrySetResult());
        Task<int> read = server.ReadAsync(new byte[16]).AsTask();

        client.Reset(Http2ErrorCode.Cancel);
        var e = await Assert.ThrowsAnyAsync<IOException>(() => read.WaitAsync(Functional));
        Assert.Contains("Cancel", e.Message, StringComparison.Ordinal);
        await aborted.Task.WaitAsync(Functional);
        await Assert.ThrowsAnyAsync<IOException>(() => client.WriteAsync(new byte[1]).AsTask());
        await client.DisposeAsync();
    }

    [Fact]
    public async Task The_end_of_the_connection_fails_every_stream()
    {
        await using var pair = await Pair.StartAsync();
        await using Http2Stream client = await pair.Client.ConnectAsync("10.0.0.2:8080").WaitAsync(Functional);
        await using Http2Stream server = await pair.Accepted.Reader.ReadAsync().AsTask().WaitAsync(Functional);
        Task<int> read = client.ReadAsync(new byte[16]).AsTask();
        pair.Server.Abort();
        await Assert.ThrowsAnyAsync<IOException>(() => read.WaitAsync(Functional));
        await pair.Client.Completion.WaitAsync(Functional);
        Assert.False(pair.Client.IsOpen);
        await Assert.ThrowsAnyAsync<IOException>(() => pair.Client.ConnectAsync("10.0.0.2:1"));
    }

    [Fact]
    public async Task After_goaway_open_streams_continue_and_new_ones_are_refused()
    {
        await using var pair = await Pair.StartAsync(echo: true);
        await using Http2Stream before = await pair.Client.ConnectAsync("10.0.0.2:8080").WaitAsync(Functional);
        await pair.Server.ShutdownAsync();
        // The echo of a byte sent after the GOAWAY proves the client processed it (frames are in order).
        await before.WriteAsync("x"u8.ToArray());
        await before.FlushAsync();
        byte[] one = new byte[1];
        Assert.Equal(1, await before.ReadAsync(one).AsTask().WaitAsync(Functional));
        Assert.False(pair.Client.IsOpen);
        await Assert.ThrowsAnyAsync<IOException>(() => pair.Client.ConnectAsync("10.0.0.2:8081"));
    }

    public static TheoryData<string, Http2ErrorCode> BadFrames => new()
    {
        { "010001 00 00 00000001", Http2ErrorCode.FrameSizeError }, // 64 KiB + 1: over our maximum
        { "000004 08 00 00000000 00000000", Http2ErrorCode.ProtocolError }, // WINDOW_UPDATE of 0
        { "000002 00 00 00000003 6869", Http2ErrorCode.ProtocolError }, // DATA on an idle stream
        { "000001 01 04 00000001 80", Http2ErrorCode.CompressionError }, // HPACK index 0
        { "000001 01 00 00000001 82 000001 00 00 00000001 00", Http2ErrorCode.ProtocolError }, // DATA inside a header block
        { "000000 05 04 00000001", Http2ErrorCode.ProtocolError }, // PUSH_PROMISE
        { "000001 09 04 00000001 82", Http2ErrorCode.ProtocolError }, // CONTINUATION without HEADERS
    };

    [Theory]
    [MemberData(nameof(BadFrames))]
    public async Task Bad_frames_end_the_connection_with_a_goaway_carrying_the_rfcs_code(string hex, Http2ErrorCode code)
    {
        var accepted = Channel.CreateUnbounded<Http2Stream>();
        (Socket raw, Socket serverSocket) = await SocketPairAsync();
        using var rawStream = new NetworkStream(raw, ownsSocket: true);
        Http2Connection server = Http2Connection.StartServer(new NetworkStream(serverSocket, ownsSocket: true), s => accepted.Writer.WriteAsync(s).AsTask());
        await using (server)
        {
            var w = new ArrayBufferWriter<byte>();
            w.Write(Http2Protocol.ClientPreface);
            FrameWriter.Settings(w, []);
            w.Write(HpackTests.Hex(hex));
            await rawStream.WriteAsync(w.WrittenMemory);

            (int last, Http2ErrorCode got) = await ReadGoAwayAsync(rawStream).WaitAsync(Functional);
            Assert.Equal(code, got);
            Assert.Equal(0, last);
            await server.Completion.WaitAsync(Functional);
        }
    }

    [Fact]
    public async Task A_stream_window_overrun_resets_only_that_stream()
    {
        var accepted = Channel.CreateUnbounded<Http2Stream>();
        (Socket raw, Socket serverSocket) = await SocketPairAsync();
        using var rawStream = new NetworkStream(raw, ownsSocket: true);
        var options = new Http2ConnectionOptions { InitialStreamWindow = 16, ConnectionWindow = 1 << 20 };
        await using Http2Connection server = Http2Connection.StartServer(new NetworkStream(serverSocket, ownsSocket: true), s => accepted.Writer.WriteAsync(s).AsTask(), options);
        var w = new ArrayBufferWriter<byte>();
        w.Write(Http2Protocol.ClientPreface);
        FrameWriter.Settings(w, []);
        var block = new ArrayBufferWriter<byte>();
        HpackEncoder.Encode(block, [new HeaderField(":method", "CONNECT"), new HeaderField(":authority", "10.0.0.2:1")]);
        FrameWriter.Headers(w, 1, block.WrittenSpan, endStream: false, 16_384);
        FrameWriter.Data(w, 1, new byte[17], endStream: false);
        await rawStream.WriteAsync(w.WrittenMemory);

        Http2Stream stream = await accepted.Reader.ReadAsync().AsTask().WaitAsync(Functional);
        (int streamId, Http2ErrorCode code) = await ReadFrameAsync(rawStream, FrameType.RstStream).WaitAsync(Functional);
        Assert.Equal((1, Http2ErrorCode.FlowControlError), (streamId, code));
        await Assert.ThrowsAnyAsync<IOException>(() => stream.ReadAsync(new byte[1]).AsTask().WaitAsync(Functional));
        Assert.True(server.IsOpen);
    }

    [Fact]
    public async Task A_client_without_streams_for_its_idle_period_sends_goaway_and_closes()
    {
        (Socket raw, Socket clientSocket) = await SocketPairAsync();
        using var rawStream = new NetworkStream(raw, ownsSocket: true);
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var idled = 0;
        var options = new Http2ConnectionOptions { IdleTimeout = TimeSpan.FromSeconds(90), IdleTimeProvider = time, OnIdleClose = _ => idled++ };
        await using Http2Connection client = Http2Connection.StartClient(new NetworkStream(clientSocket, ownsSocket: true), options);
        await rawStream.ReadExactlyAsync(new byte[Http2Protocol.ClientPreface.Length]).AsTask().WaitAsync(Functional);

        time.Advance(TimeSpan.FromSeconds(89));
        Assert.True(client.IsOpen);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(client.IsOpen); // at once: no new stream from here on
        Assert.True(client.ClosedForIdleness);
        Assert.Equal(1, idled);
        Assert.Equal((0, Http2ErrorCode.NoError), await ReadGoAwayAsync(rawStream).WaitAsync(Functional));
        await client.Completion.WaitAsync(Functional);
    }

    [Fact]
    public async Task A_server_keeps_a_connection_while_a_stream_is_open_and_closes_it_an_idle_period_after_the_last_ends()
    {
        var accepted = Channel.CreateUnbounded<Http2Stream>();
        (Socket raw, Socket serverSocket) = await SocketPairAsync();
        using var rawStream = new NetworkStream(raw, ownsSocket: true);
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var options = new Http2ConnectionOptions { IdleTimeout = TimeSpan.FromMinutes(5), TimeProvider = time };
        await using Http2Connection server = Http2Connection.StartServer(new NetworkStream(serverSocket, ownsSocket: true), s => accepted.Writer.WriteAsync(s).AsTask(), options);
        var w = new ArrayBufferWriter<byte>();
        w.Write(Http2Protocol.ClientPreface);
        FrameWriter.Settings(w, []);
        var block = new ArrayBufferWriter<byte>();
        HpackEncoder.Encode(block, [new HeaderField(":method", "CONNECT"), new HeaderField(":authority", "10.0.0.2:1")]);
        FrameWriter.Headers(w, 1, block.WrittenSpan, endStream: false, 16_384);
        await rawStream.WriteAsync(w.WrittenMemory);
        Http2Stream stream = await accepted.Reader.ReadAsync().AsTask().WaitAsync(Functional);

        time.Advance(TimeSpan.FromMinutes(20));
        Assert.True(server.IsOpen);
        stream.Dispose(); // the last stream ends: the idle period starts now
        time.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromSeconds(1));
        Assert.True(server.IsOpen);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(server.IsOpen);
        Assert.Equal((1, Http2ErrorCode.NoError), await ReadGoAwayAsync(rawStream).WaitAsync(Functional));
        await server.Completion.WaitAsync(Functional);
    }

    private static async Task ReadUntilAsync(Stream raw, FrameType type, FrameFlags flags)
    {
        byte[] header = new byte[9];
        while (true)
        {
            await raw.ReadExactlyAsync(header);
            FrameHeader frame = FrameHeader.Read(header);
            await raw.ReadExactlyAsync(new byte[frame.Length]);
            if (frame.Type == type && frame.Flags == flags)
            {
                return;
            }
        }
    }

    [Fact]
    public async Task Our_server_understands_httpclients_frames()
    {
        // HttpClient over h2c with prior knowledge: its preface, SETTINGS, WINDOW_UPDATE and a
        // Huffman-coded HPACK block. A GET is not a tunnel: the answer is 405.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        Task<Http2Connection> serving = Task.Run(async () =>
        {
            Socket accepted = await listener.AcceptAsync();
            return Http2Connection.StartServer(new NetworkStream(accepted, ownsSocket: true), _ => Task.CompletedTask);
        });
        using var client = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using HttpResponseMessage response = await client.GetAsync($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndPoint!).Port}/some/path?q=1").WaitAsync(Functional);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal(HttpVersion.Version20, response.Version);
        await (await serving).DisposeAsync();
    }

    [Fact]
    public async Task Our_client_tunnels_through_kestrels_connect()
    {
        // Kestrel as the peer: it reads our preface, SETTINGS and CONNECT, answers 200, echoes
        // the request body and ends its response (END_STREAM) after our half-close.
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.Limits.MinRequestBodyDataRate = null;
            k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2);
        });
        await using WebApplication app = builder.Build();
        string? method = null;
        app.Run(async context =>
        {
            method = context.Request.Method;
            context.Response.StatusCode = 200;
            await context.Response.StartAsync();
            await context.Response.Body.FlushAsync();
            await context.Request.Body.CopyToAsync(context.Response.Body);
        });
        await app.StartAsync();
        var address = new Uri(app.Urls.First());

        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, address.Port);
        await using Http2Connection connection = Http2Connection.StartClient(new NetworkStream(socket, ownsSocket: true));
        await using Http2Stream stream = await connection.ConnectAsync("10.0.0.2:443").WaitAsync(Functional);
        Assert.Equal(200, stream.Status);
        byte[] payload = new byte[200_000];
        new Random(3).NextBytes(payload);
        Task<byte[]> echoed = ReadAllAsync(stream);
        await WriteAllAsync(stream, payload);
        Assert.Equal(payload, await echoed.WaitAsync(Functional));
        Assert.Equal("CONNECT", method);
    }

    private static async Task<(int, Http2ErrorCode)> ReadGoAwayAsync(Stream raw)
    {
        (int last, Http2ErrorCode code) = await ReadFrameAsync(raw, FrameType.GoAway);
        return (last, code);
    }

    /// <summary>Reads frames until one of <paramref name="type"/>: its stream (or GOAWAY's last stream) and error code.</summary>
    private static async Task<(int, Http2ErrorCode)> ReadFrameAsync(Stream raw, FrameType type)
    {
        var buffer = new List<byte>();
        byte[] chunk = new byte[4096];
        while (true)
        {
            byte[] all = [.. buffer];
            int offset = 0;
            while (all.Length - offset >= 9)
            {
                FrameHeader header = FrameHeader.Read(all.AsSpan(offset));
                if (all.Length - offset < 9 + header.Length)
                {
                    break;
                }

                ReadOnlySpan<byte> payload = all.AsSpan(offset + 9, header.Length);
                if (header.Type == type && type == FrameType.GoAway)
                {
                    return FrameReader.GoAway(header, payload);
                }

                if (header.Type == type && type == FrameType.RstStream)
                {
                    return (header.StreamId, FrameReader.RstStream(header, payload));
                }

                offset += 9 + header.Length;
            }

            int n = await raw.ReadAsync(chunk);
            if (n == 0)
            {
                throw new IOException($"the connection closed without a {type}");
            }

            buffer.AddRange(chunk.AsSpan(0, n));
        }
    }

    private static async Task<string> ReadToEndAsync(Stream stream) => System.Text.Encoding.ASCII.GetString(await ReadAllAsync(stream));

    private static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        var all = new MemoryStream();
        byte[] buffer = new byte[32 * 1024];
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            all.Write(buffer, 0, n);
        }

        return all.ToArray();
    }

    private static async Task WriteAllAsync(Http2Stream stream, byte[] payload)
    {
        for (int i = 0; i < payload.Length; i += 50_000)
        {
            await stream.WriteAsync(payload.AsMemory(i, Math.Min(50_000, payload.Length - i)));
        }

        await stream.FlushAsync();
        await stream.ShutdownWriteAsync();
    }

    internal static async Task<(Socket, Socket)> SocketPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Task<Socket> accept = listener.AcceptAsync();
        await client.ConnectAsync(listener.LocalEndPoint!);
        Socket server = await accept;
        server.NoDelay = true;
        return (client, server);
    }

    /// <summary>Our client and our server over one loopback connection.</summary>
    private sealed class Pair : IAsyncDisposable
    {
        public Http2Connection Client { get; private set; } = null!;

        public Http2Connection Server { get; private set; } = null!;

        public Channel<Http2Stream> Accepted { get; } = Channel.CreateUnbounded<Http2Stream>();

        /// <param name="direct">Both ends on a <see cref="SocketTransport"/> in direct mode, each read loop on its own thread (the sidecars' setup).</param>
        public static async Task<Pair> StartAsync(Http2ConnectionOptions? client = null, Http2ConnectionOptions? server = null, bool echo = false, int status = 200, bool direct = false)
        {
            (Socket c, Socket s) = await SocketPairAsync();
            var pair = new Pair();
            Stream serverTransport = new NetworkStream(s, ownsSocket: true);
            Stream clientTransport = new NetworkStream(c, ownsSocket: true);
            if (direct)
            {
                var serverDirect = new SocketTransport(s);
                var clientDirect = new SocketTransport(c);
                Assert.True(serverDirect.EnterDirectMode());
                Assert.True(clientDirect.EnterDirectMode());
                (serverTransport, clientTransport) = (serverDirect, clientDirect);
                client ??= new Http2ConnectionOptions { ReadThread = true };
                server ??= new Http2ConnectionOptions { ReadThread = true };
            }

            pair.Server = Http2Connection.StartServer(serverTransport, async stream =>
            {
                await stream.RespondAsync(status);
                if (status != 200)
                {
                    stream.Dispose();
                    return;
                }

                if (!echo)
                {
                    await pair.Accepted.Writer.WriteAsync(stream);
                    return;
                }

                await using (stream)
                {
                    byte[] buffer = new byte[16 * 1024];
                    int n;
                    while ((n = await stream.ReadAsync(buffer)) > 0)
                    {
                        await stream.WriteAsync(buffer.AsMemory(0, n));
                        await stream.FlushAsync();
                    }

                    await stream.ShutdownWriteAsync();
                }
            }, server);
            pair.Client = Http2Connection.StartClient(clientTransport, client);
            return pair;
        }

        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            await Server.DisposeAsync();
        }
    }
}
