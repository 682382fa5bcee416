using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Beemesh.Agent.Tunnel;

namespace Beemesh.Agent.Tests.Tunnel;

public sealed class ClientHelloSniTests
{
    /// <summary>The first record a real .NET TLS client sends for <paramref name="targetHost"/>.</summary>
    internal static async Task<byte[]> CaptureHelloAsync(string targetHost)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using TcpClient server = await listener.AcceptTcpClientAsync();
        using var tls = new SslStream(client.GetStream(), false, (_, _, _, _) => true);
        Task handshake = tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = targetHost });
        NetworkStream s = server.GetStream();
        var header = new byte[5];
        await s.ReadExactlyAsync(header);
        var record = new byte[5 + BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(3))];
        header.CopyTo(record, 0);
        await s.ReadExactlyAsync(record.AsMemory(5));
        server.Client.Close(0);
        await Assert.ThrowsAnyAsync<Exception>(() => handshake);
        return record;
    }

    [Fact]
    public async Task ReadsTheServerNameOfARealClientHelloInLowerCase()
    {
        byte[] hello = await CaptureHelloAsync("Web.Default.Example.Org");
        Assert.Equal(SniReadStatus.Found, ClientHelloSni.TryRead(hello, out string? name));
        Assert.Equal("web.default.example.org", name);
    }

    [Fact]
    public async Task EveryProperPrefixNeedsMore()
    {
        byte[] hello = await CaptureHelloAsync("web.default.example.org");
        for (int i = 0; i < hello.Length; i++)
        {
            Assert.Equal(SniReadStatus.NeedMore, ClientHelloSni.TryRead(hello.AsSpan(0, i), out _));
        }
    }

    [Fact]
    public async Task AHelloSplitOverTwoRecordsIsReassembled()
    {
        byte[] hello = await CaptureHelloAsync("web.default.example.org");
        byte[] body = hello[5..];
        int cut = 40; // inside the random, before any extension
        byte[] split = [.. Record(hello, body[..cut]), .. Record(hello, body[cut..])];
        Assert.Equal(SniReadStatus.NeedMore, ClientHelloSni.TryRead(split.AsSpan(0, 5 + cut + 3), out _));
        Assert.Equal(SniReadStatus.Found, ClientHelloSni.TryRead(split, out string? name));
        Assert.Equal("web.default.example.org", name);
    }

    [Fact]
    public async Task AHelloToAnAddressHasNoName()
    {
        byte[] hello = await CaptureHelloAsync("127.0.0.1");
        Assert.Equal(SniReadStatus.Missing, ClientHelloSni.TryRead(hello, out string? name));
        Assert.Null(name);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\n\r\n")]
    [InlineData("SSH-2.0-OpenSSH_9.2\r\n")]
    public void PlainTextIsMalformed(string text)
    {
        Assert.Equal(SniReadStatus.Malformed, ClientHelloSni.TryRead(System.Text.Encoding.ASCII.GetBytes(text), out _));
    }

    [Fact]
    public async Task BrokenLengthsAndNamesAreMalformed()
    {
        byte[] hello = await CaptureHelloAsync("web.default.example.org");

        byte[] notHello = (byte[])hello.Clone();
        notHello[5] = 2; // a ServerHello
        Assert.Equal(SniReadStatus.Malformed, ClientHelloSni.TryRead(notHello, out _));

        byte[] badSessionId = (byte[])hello.Clone();
        badSessionId[5 + 4 + 34] = 255; // the session id runs past the message
        Assert.Equal(SniReadStatus.Malformed, ClientHelloSni.TryRead(badSessionId, out _));

        int at = hello.AsSpan().IndexOf("web.default"u8);
        Assert.True(at > 0);
        byte[] badName = (byte[])hello.Clone();
        badName[at + 3] = (byte)'/';
        Assert.Equal(SniReadStatus.Malformed, ClientHelloSni.TryRead(badName, out _));

        byte[] tooLong = [22, 3, 1, 0x50, 0x00, 1, 0, 0x50, 0];
        Assert.Equal(SniReadStatus.Malformed, ClientHelloSni.TryRead(tooLong, out _));
    }

    private static byte[] Record(byte[] template, byte[] payload)
    {
        var record = new byte[5 + payload.Length];
        template.AsSpan(0, 3).CopyTo(record);
        BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(3), (ushort)payload.Length);
        payload.CopyTo(record, 5);
        return record;
    }
}
