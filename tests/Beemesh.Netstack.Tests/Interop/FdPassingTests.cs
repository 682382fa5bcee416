using System.Net.Sockets;
using System.Text;
using Beemesh.Netstack.Interop;

namespace Beemesh.Netstack.Tests.Interop;

/// <summary><see cref="FdPassing.ReceiveFd(SafeHandle, Span{byte}, out int, int)"/> on plain unix sockets (no fd sent).</summary>
public sealed class FdPassingTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("beemesh-fd-").FullName;
    private readonly Socket listener;
    private readonly Socket client;
    private readonly Socket server;

    public FdPassingTests()
    {
        var endPoint = new UnixDomainSocketEndPoint(Path.Combine(directory, "s"));
        listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(endPoint);
        listener.Listen(1);
        client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        client.Connect(endPoint);
        server = listener.Accept();
    }

    public void Dispose()
    {
        client.Dispose();
        server.Dispose();
        listener.Dispose();
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public void TextWithoutDescriptor_ReturnsMinusOneAndTheLine()
    {
        client.Send("error no process with pid 7\n"u8);
        Span<byte> text = stackalloc byte[256];

        int fd = FdPassing.ReceiveFd(server.SafeHandle, text, out int length, 1000);

        Assert.Equal(-1, fd);
        Assert.Equal("error no process with pid 7\n", Encoding.UTF8.GetString(text[..length]));
    }

    [Fact]
    public void LineSplitAcrossWrites_IsReadUpToTheNewline()
    {
        client.Send("ok vnet"u8);
        client.Send("=1 offload=0\nextra"u8);
        Span<byte> text = stackalloc byte[256];

        FdPassing.ReceiveFd(server.SafeHandle, text, out int length, 1000);

        Assert.StartsWith("ok vnet=1 offload=0\n", Encoding.UTF8.GetString(text[..length]));
    }

    [Fact]
    public void EndOfStream_ReturnsWhatArrived()
    {
        client.Send("partial"u8);
        client.Shutdown(SocketShutdown.Send);
        Span<byte> text = stackalloc byte[256];

        int fd = FdPassing.ReceiveFd(server.SafeHandle, text, out int length, 1000);

        Assert.Equal(-1, fd);
        Assert.Equal("partial", Encoding.UTF8.GetString(text[..length]));
    }

    [Fact]
    public void NonBlockingSocketWithNothingToRead_TimesOut()
    {
        server.Blocking = false;
        var buffer = new byte[16];

        Assert.Throws<TimeoutException>(() => FdPassing.ReceiveFd(server.SafeHandle, buffer, out _, 50));
    }
}
