using System.Buffers.Binary;
using System.Net.Security;
using System.Text.Json;

namespace Beemesh.Identity.Join;

/// <summary>
/// Framing of the join exchange over TLS 1.3 with ALPN <c>beemesh-join/1</c> (so it can share a
/// listening port with other protocols, told apart by ALPN): each message is a 4-byte big-endian
/// length followed by that many bytes of UTF-8 JSON (<see cref="JoinMessage"/>), at most
/// <see cref="MaxFrameLength"/>. The exchange: server <c>hello</c>, joiner <c>join</c> (or
/// <c>refuse</c>), server <c>joined</c> (or <c>error</c>), then both close.
/// <para>
/// Renewal runs on the same port with ALPN <c>beemesh-renew/1</c>: the node presents its current node
/// SVID as client certificate and sends <c>renew</c>; the server answers <c>renewed</c> (or
/// <c>error</c>), then both close.
/// </para>
/// </summary>
public static class JoinProtocol
{
    /// <summary>The ALPN protocol name.</summary>
    public const string ApplicationProtocolName = "beemesh-join/1";

    /// <summary>The ALPN protocol name of node certificate renewal.</summary>
    public const string RenewalProtocolName = "beemesh-renew/1";

    /// <summary>Largest frame accepted (a few certificates and requests fit many times over).</summary>
    public const int MaxFrameLength = 64 * 1024;

    /// <summary>The ALPN protocol.</summary>
    public static readonly SslApplicationProtocol ApplicationProtocol = new(ApplicationProtocolName);

    /// <summary>The ALPN protocol of node certificate renewal.</summary>
    public static readonly SslApplicationProtocol RenewalProtocol = new(RenewalProtocolName);

    /// <summary>Writes one message.</summary>
    public static async Task WriteAsync(Stream stream, JoinMessage message, CancellationToken cancellationToken)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(message, JoinJsonContext.Default.JoinMessage);
        byte[] frame = new byte[4 + json.Length];
        BinaryPrimitives.WriteInt32BigEndian(frame, json.Length);
        json.CopyTo(frame, 4);
        await stream.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads one message. Throws <see cref="InvalidDataException"/> for an oversized frame, invalid
    /// JSON or a message without a type, and <see cref="EndOfStreamException"/> when the peer closed.
    /// </summary>
    public static async Task<JoinMessage> ReadAsync(Stream stream, CancellationToken cancellationToken)
    {
        byte[] header = new byte[4];
        await stream.ReadExactlyAsync(header, cancellationToken).ConfigureAwait(false);
        int length = BinaryPrimitives.ReadInt32BigEndian(header);
        if (length is < 2 or > MaxFrameLength)
        {
            throw new InvalidDataException($"a join frame of {(uint)length} bytes is outside 2..{MaxFrameLength}");
        }

        byte[] body = new byte[length];
        await stream.ReadExactlyAsync(body, cancellationToken).ConfigureAwait(false);
        try
        {
            JoinMessage? message = JsonSerializer.Deserialize(body, JoinJsonContext.Default.JoinMessage);
            return message?.Type is null ? throw new InvalidDataException("a join message without a type") : message;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException("a join message that is not valid JSON", e);
        }
    }
}
