using System.Buffers;
using System.IO.Pipelines;

namespace Beemesh.Sidecar.Http;

/// <summary>
/// Tells HTTP/2 with prior knowledge from HTTP/1.1 by the first bytes of a connection: an HTTP/2
/// client starts with the 24-byte preface <c>PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n</c> (RFC 9113 section 3.4),
/// which no HTTP/1.1 request line can begin with past its first differing byte.
/// </summary>
internal static class Http2Preface
{
    /// <summary>The client connection preface.</summary>
    public static ReadOnlySpan<byte> Bytes => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    /// <summary>
    /// Reads until the preface is either complete or ruled out, then leaves every byte unread for
    /// the protocol that follows. A connection that ends before deciding is treated as HTTP/1.1,
    /// whose parser then refuses it.
    /// </summary>
    public static async ValueTask<bool> IsHttp2Async(PipeReader input, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            OperationStatus status = Match(buffer);
            if (status != OperationStatus.NeedMoreData || result.IsCompleted || result.IsCanceled)
            {
                // Nothing consumed, nothing examined: the next reader sees the same bytes at once.
                input.AdvanceTo(buffer.Start, buffer.Start);
                return status == OperationStatus.Done;
            }

            // Everything examined: wait for more bytes before looking again.
            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>Done: the whole preface; InvalidData: not HTTP/2; NeedMoreData: a proper prefix so far.</summary>
    public static OperationStatus Match(ReadOnlySequence<byte> buffer)
    {
        ReadOnlySpan<byte> preface = Bytes;
        int length = (int)Math.Min(buffer.Length, preface.Length);
        Span<byte> head = stackalloc byte[preface.Length];
        buffer.Slice(0, length).CopyTo(head);
        if (!head[..length].SequenceEqual(preface[..length]))
        {
            return OperationStatus.InvalidData;
        }

        return length == preface.Length ? OperationStatus.Done : OperationStatus.NeedMoreData;
    }
}
