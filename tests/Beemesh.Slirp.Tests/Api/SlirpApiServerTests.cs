using System.Net.Sockets;
using System.Text;
using Beemesh.Slirp.Api;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Slirp.Tests.Api;

public sealed class SlirpApiServerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bm-api-").FullName;
    private readonly FakeTimeProvider _time = new();
    private readonly FakePortForwardTable _table = new();

    private string SocketPath => Path.Combine(_dir, "api.sock");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private SlirpApiServer StartServer()
    {
        var server = new SlirpApiServer(SocketPath, _table, logger: null, timeProvider: _time, requestTimeout: TimeSpan.FromSeconds(5));
        server.Start();
        return server;
    }

    private Socket Connect()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(SocketPath));
        socket.ReceiveTimeout = 10_000;
        return socket;
    }

    private static string ReadToEnd(Socket socket)
    {
        var reply = new MemoryStream();
        var buffer = new byte[8192];
        int n;
        while ((n = socket.Receive(buffer)) > 0)
        {
            reply.Write(buffer, 0, n);
        }

        return Encoding.UTF8.GetString(reply.ToArray());
    }

    private string Request(byte[] request, bool closeWrite = true)
    {
        using Socket socket = Connect();
        socket.Send(request);
        if (closeWrite)
        {
            socket.Shutdown(SocketShutdown.Send);
        }

        return ReadToEnd(socket);
    }

    [Fact]
    public void AddListRemove_OverTheSocket()
    {
        using SlirpApiServer server = StartServer();

        Assert.Equal("{\"return\":{\"id\":1}}", Request("{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"tcp\", \"host_addr\": \"0.0.0.0\", \"host_port\": 8080, \"guest_addr\": \"10.0.2.100\", \"guest_port\": 80}}"u8.ToArray()));
        Assert.Equal("{\"entries\":[{\"id\":1,\"proto\":\"tcp\",\"host_addr\":\"0.0.0.0\",\"host_port\":8080,\"guest_addr\":\"10.0.2.100\",\"guest_port\":80}]}", Request("{\"execute\": \"list_hostfwd\"}"u8.ToArray()));
        Assert.Equal("{\"return\":{}}", Request("{\"execute\": \"remove_hostfwd\", \"arguments\": {\"id\": 1}}"u8.ToArray()));
        Assert.Empty(_table.List());
        Assert.Equal(0, server.BadRequests);
    }

    [Fact]
    public void CompleteRequest_IsAnsweredWithoutWaitingForEndOfFile()
    {
        using SlirpApiServer server = StartServer();

        Assert.Equal("{\"entries\":[]}", Request("{\"execute\": \"list_hostfwd\"}"u8.ToArray(), closeWrite: false));
    }

    [Fact]
    public void RequestInPieces_IsAssembled()
    {
        using SlirpApiServer server = StartServer();
        using Socket socket = Connect();

        socket.Send("{\"execute\": \"list_"u8.ToArray());
        socket.Send("hostfwd\"}"u8.ToArray());

        Assert.Equal("{\"entries\":[]}", ReadToEnd(socket));
    }

    [Fact]
    public void ExistingFileAtPath_IsReplaced()
    {
        File.WriteAllText(SocketPath, "stale");
        using SlirpApiServer server = StartServer();

        Assert.Equal("{\"entries\":[]}", Request("{\"execute\": \"list_hostfwd\"}"u8.ToArray()));
    }

    [Fact]
    public void TooLongPath_IsRefusedWithSlirp4netnsMessage()
    {
        using var server = new SlirpApiServer("/tmp/" + new string('x', 120), _table, null);

        var ex = Assert.Throws<InvalidOperationException>(server.Start);
        Assert.Equal("the specified API socket path is too long (>= 108)", ex.Message);
    }

    [Theory]
    [InlineData(4095, "{\"entries\":[]}")]
    [InlineData(4096, "{\"error\":{\"desc\":\"bad request: too large message\"}}")]
    [InlineData(100_000, "{\"error\":{\"desc\":\"bad request: too large message\"}}")]
    public void Size_LimitIsSlirp4netns4096(int size, string expected)
    {
        using SlirpApiServer server = StartServer();
        byte[] request = new byte[size];
        Array.Fill(request, (byte)' ');
        "{\"execute\": \"list_hostfwd\"}"u8.CopyTo(request);

        using Socket socket = Connect();
        try
        {
            socket.Send(request.AsSpan(0, Math.Min(size, 4096)));
            if (size > 4096)
            {
                socket.Send(request.AsSpan(4096));
            }
        }
        catch (SocketException)
        {
            // The server may close before taking everything; the reply is still readable.
        }

        Assert.Equal(expected, ReadToEnd(socket));
        Assert.Equal("{\"entries\":[]}", Request("{\"execute\": \"list_hostfwd\"}"u8.ToArray()));
    }

    [Fact]
    public void Garbage_IsAnsweredAndCounted_ServerKeepsServing()
    {
        using SlirpApiServer server = StartServer();
        var random = new Random(1234);
        for (int i = 0; i < 20; i++)
        {
            byte[] garbage = new byte[random.Next(1, 3000)];
            random.NextBytes(garbage);
            garbage[0] = (byte)'x';
            Assert.StartsWith("{\"error\":{\"desc\":\"bad request: ", Request(garbage), StringComparison.Ordinal);
        }

        Assert.Equal(20, server.BadRequests);
        Assert.Equal("{\"entries\":[]}", Request("{\"execute\": \"list_hostfwd\"}"u8.ToArray()));
    }

    [Fact]
    public void SlowClient_DoesNotBlockOthers_AndIsDroppedAtTheDeadline()
    {
        using SlirpApiServer server = StartServer();
        using Socket slow = Connect();
        slow.Send("{\"execute\": "u8.ToArray());

        // Another client is served while the slow one holds its connection open.
        Assert.Equal("{\"entries\":[]}", Request("{\"execute\": \"list_hostfwd\"}"u8.ToArray()));

        // Once the deadline passes the partial request is answered as slirp4netns would answer it.
        slow.ReceiveTimeout = 200;
        string? reply = null;
        for (int attempt = 0; attempt < 100 && reply is null; attempt++)
        {
            _time.Advance(TimeSpan.FromSeconds(6));
            try
            {
                reply = ReadToEnd(slow);
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.TimedOut || ex.SocketErrorCode == SocketError.WouldBlock)
            {
            }
        }

        Assert.Equal("{\"error\":{\"desc\":\"bad request: cannot parse JSON\"}}", reply);
        Assert.Equal(1, server.BadRequests);
    }

    [Fact]
    public void SilentClient_IsClosedAtTheDeadline()
    {
        using SlirpApiServer server = StartServer();
        using Socket silent = Connect();
        silent.ReceiveTimeout = 200;
        string? reply = null;
        for (int attempt = 0; attempt < 100 && reply is null; attempt++)
        {
            _time.Advance(TimeSpan.FromSeconds(6));
            try
            {
                reply = ReadToEnd(silent);
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.TimedOut || ex.SocketErrorCode == SocketError.WouldBlock)
            {
            }
        }

        Assert.Equal(string.Empty, reply);
        Assert.Equal(1, server.BadRequests);
    }

    [Fact]
    public void ClientThatConnectsAndCloses_GetsCannotParse()
    {
        using SlirpApiServer server = StartServer();

        Assert.Equal("{\"error\":{\"desc\":\"bad request: cannot parse JSON\"}}", Request([]));
    }
    [Fact]
    public void HundredIdleClients_DoNotDelayARealRequest_AndThoseOverTheLimitAreToldWhy()
    {
        // The clock never moves: a request that had to wait for an idle client's 5 s deadline would
        // never be answered, and the 10 s receive timeout below would fail the test.
        using SlirpApiServer server = StartServer();
        var idle = new List<Socket>();
        try
        {
            for (int i = 0; i < 100; i++)
            {
                idle.Add(Connect());
            }

            Assert.Equal("{\"entries\":[]}", Request("{\"execute\": \"list_hostfwd\"}"u8.ToArray()));

            // Each newer connection from the same caller displaced its oldest idle one, which was told why
            // and closed: all but the newest MaxConnectionsPerCaller - 1 (the real request took a place too).
            int displaced = 100 - SlirpApiServer.MaxConnectionsPerCaller + 1;
            foreach (Socket s in idle.Take(displaced))
            {
                Assert.Equal(SlirpApiRequestHandler.TooManyConnections, ReadToEnd(s));
            }

            Assert.Equal(displaced, server.Evicted);
        }
        finally
        {
            idle.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public void ConnectionBeingAnswered_IsNeverDisplaced_AndTheServerKeepsServing()
    {
        using SlirpApiServer server = StartServer();
        var open = new List<Socket>();
        try
        {
            // Requests sent but not read back: complete, so they are being answered, not waiting.
            for (int i = 0; i < SlirpApiServer.MaxConnectionsPerCaller; i++)
            {
                Socket s = Connect();
                s.Send("{\"execute\": \"list_hostfwd\"}"u8.ToArray());
                open.Add(s);
            }

            foreach (Socket s in open)
            {
                Assert.Equal("{\"entries\":[]}", ReadToEnd(s));
            }

            Assert.Equal(0, server.Evicted);
            Assert.Equal("{\"entries\":[]}", Request("{\"execute\": \"list_hostfwd\"}"u8.ToArray()));
        }
        finally
        {
            open.ForEach(s => s.Dispose());
        }
    }
}
