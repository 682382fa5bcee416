using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Beemesh.Sidecar.Http;

namespace Beemesh.Sidecar.Tests.Http;

public sealed class Http2PrefaceTests
{
    [Theory]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", OperationStatus.Done)]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\u0012\u0004", OperationStatus.Done)]
    [InlineData("PRI * HTTP/2", OperationStatus.NeedMoreData)]
    [InlineData("", OperationStatus.NeedMoreData)]
    [InlineData("GET / HTTP/1.1\r\n", OperationStatus.InvalidData)]
    [InlineData("PRIX", OperationStatus.InvalidData)]
    public void Match_DecidesAsSoonAsTheBytesAllow(string head, OperationStatus expected)
    {
        Assert.Equal(expected, Http2Preface.Match(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(head))));
    }

    [Theory]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nrest", true)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\n\r\n", false)]
    [InlineData("PRI * HTT", false)] // ends before the preface completes: HTTP/1.1's parser refuses it
    public async Task IsHttp2Async_LeavesEveryByteForTheNextReader(string sent, bool http2)
    {
        var pipe = new Pipe();
        byte[] bytes = Encoding.ASCII.GetBytes(sent);
        // Arrives in two pieces, so the reader must wait for the second one when undecided.
        await pipe.Writer.WriteAsync(bytes.AsMemory(0, 5));
        Task<bool> decided = Http2Preface.IsHttp2Async(pipe.Reader, CancellationToken.None).AsTask();
        await pipe.Writer.WriteAsync(bytes.AsMemory(5));
        await pipe.Writer.CompleteAsync();

        Assert.Equal(http2, await decided);
        ReadResult all = await pipe.Reader.ReadAtLeastAsync(bytes.Length);
        Assert.Equal(sent, Encoding.ASCII.GetString(all.Buffer.ToArray()));
    }
}
