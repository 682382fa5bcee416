using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Beemesh.LoadTests.StateBench;

/// <summary>One client's connection to a key-value target: a write and a read of one key.</summary>
internal interface IKvClient : IDisposable
{
    /// <summary>Stores <paramref name="value"/> under <paramref name="key"/>; throws on a refused write.</summary>
    Task PutAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken);

    /// <summary>The length of the value stored under <paramref name="key"/>, or -1 when the key is absent.</summary>
    Task<int> GetAsync(string key, CancellationToken cancellationToken);
}

/// <summary>The targets the driver speaks to, each over its own protocol.</summary>
internal static class KvTargets
{
    /// <summary>Dapr's state API over HTTP/1.1 (a Beemesh sidecar): <c>dapr-http URL STORE</c>.</summary>
    public const string DaprHttp = "dapr-http";

    /// <summary>Dapr's state API over gRPC (HTTP/2 cleartext; a Beemesh sidecar): <c>dapr-grpc URL STORE</c>.</summary>
    public const string DaprGrpc = "dapr-grpc";

    /// <summary>etcd's v3 JSON gateway over HTTP/1.1: <c>etcd URL</c>.</summary>
    public const string Etcd = "etcd";

    /// <summary>Redis's RESP over one TCP connection: <c>resp HOST:PORT</c>.</summary>
    public const string Resp = "resp";

    /// <summary>A new client (one connection) for <paramref name="kind"/> at <paramref name="endpoint"/>.</summary>
    public static IKvClient Create(string kind, string endpoint, string store) => kind switch
    {
        DaprHttp => new DaprHttpKvClient(endpoint, store),
        DaprGrpc => new DaprGrpcKvClient(endpoint, store),
        Etcd => new EtcdKvClient(endpoint),
        Resp => new RespKvClient(endpoint),
        _ => throw new FormatException($"unknown target '{kind}' (dapr-http, dapr-grpc, etcd, resp)"),
    };

    /// <summary>An HTTP client that keeps one HTTP/1.1 connection open: the same kind for every HTTP target.</summary>
    internal static HttpClient KeepAliveClient(string baseUrl) =>
        new(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = 1,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            ConnectCallback = async (context, token) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, token).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        })
        {
            BaseAddress = new Uri(baseUrl.EndsWith('/') ? baseUrl : baseUrl + "/"),
            DefaultRequestVersion = HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = TimeSpan.FromSeconds(30),
        };

    /// <summary>Throws with the status and the start of the body unless the status is <paramref name="expected"/>.</summary>
    internal static async Task EnsureAsync(HttpResponseMessage response, HttpStatusCode expected, CancellationToken cancellationToken)
    {
        if (response.StatusCode != expected)
        {
            string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            throw new InvalidOperationException($"HTTP {(int)response.StatusCode}: {(body.Length > 200 ? body[..200] : body)}");
        }
    }
}

/// <summary>
/// Dapr's state API: save is <c>POST v1.0/state/STORE</c> with <c>[{"key":K,"value":V}]</c> (204),
/// get is <c>GET v1.0/state/STORE/K</c> (200 with the stored JSON, 204 when absent). The value
/// bytes must be one JSON value; the driver's values are JSON strings.
/// </summary>
internal sealed class DaprHttpKvClient(string baseUrl, string store) : IKvClient
{
    private readonly HttpClient _http = KvTargets.KeepAliveClient(baseUrl);
    private readonly string _save = "v1.0/state/" + Uri.EscapeDataString(store);

    public async Task PutAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent(SaveBody(key, value.Span));
        content.Headers.ContentType = new("application/json");
        using HttpResponseMessage response = await _http.PostAsync(_save, content, cancellationToken).ConfigureAwait(false);
        await KvTargets.EnsureAsync(response, HttpStatusCode.NoContent, cancellationToken).ConfigureAwait(false);
    }

    public async Task<int> GetAsync(string key, CancellationToken cancellationToken)
    {
        using HttpResponseMessage response = await _http.GetAsync(_save + "/" + Uri.EscapeDataString(key), cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NoContent)
        {
            return -1;
        }

        await KvTargets.EnsureAsync(response, HttpStatusCode.OK, cancellationToken).ConfigureAwait(false);
        byte[] body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        return body.Length;
    }

    /// <summary>The save request's body for one key (the key is plain ASCII, the value one JSON value).</summary>
    internal static byte[] SaveBody(string key, ReadOnlySpan<byte> value)
    {
        byte[] head = Encoding.ASCII.GetBytes("[{\"key\":\"" + key + "\",\"value\":");
        byte[] body = new byte[head.Length + value.Length + 2];
        head.CopyTo(body, 0);
        value.CopyTo(body.AsSpan(head.Length));
        body[^2] = (byte)'}';
        body[^1] = (byte)']';
        return body;
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>
/// etcd's v3 JSON gateway (grpc-gateway in front of the KV service): <c>POST v3/kv/put</c> with
/// <c>{"key":B64,"value":B64}</c> and <c>POST v3/kv/range</c> with <c>{"key":B64}</c>; a range
/// is linearizable by default (not <c>serializable</c>).
/// </summary>
internal sealed class EtcdKvClient(string baseUrl) : IKvClient
{
    private readonly HttpClient _http = KvTargets.KeepAliveClient(baseUrl);

    public async Task PutAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent(PutBody(key, value.Span));
        content.Headers.ContentType = new("application/json");
        using HttpResponseMessage response = await _http.PostAsync("v3/kv/put", content, cancellationToken).ConfigureAwait(false);
        await KvTargets.EnsureAsync(response, HttpStatusCode.OK, cancellationToken).ConfigureAwait(false);
    }

    public async Task<int> GetAsync(string key, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent(Encoding.ASCII.GetBytes("{\"key\":\"" + Base64(Encoding.ASCII.GetBytes(key)) + "\"}"));
        content.Headers.ContentType = new("application/json");
        using HttpResponseMessage response = await _http.PostAsync("v3/kv/range", content, cancellationToken).ConfigureAwait(false);
        await KvTargets.EnsureAsync(response, HttpStatusCode.OK, cancellationToken).ConfigureAwait(false);
        byte[] body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        return RangeValueLength(body);
    }

    /// <summary>The put request's body: key and value base64-encoded, as the gateway's JSON mapping of bytes fields.</summary>
    internal static byte[] PutBody(string key, ReadOnlySpan<byte> value) =>
        Encoding.ASCII.GetBytes("{\"key\":\"" + Base64(Encoding.ASCII.GetBytes(key)) + "\",\"value\":\"" + Base64(value) + "\"}");

    /// <summary>The decoded length of the first value in a range answer, or -1 when it holds no key.</summary>
    internal static int RangeValueLength(ReadOnlySpan<byte> json)
    {
        var reader = new System.Text.Json.Utf8JsonReader(json);
        int depth = -1;
        bool inKvs = false;
        while (reader.Read())
        {
            if (reader.TokenType == System.Text.Json.JsonTokenType.PropertyName)
            {
                if (!inKvs && reader.CurrentDepth == 1 && reader.ValueTextEquals("kvs"))
                {
                    inKvs = true;
                    depth = reader.CurrentDepth;
                }
                else if (inKvs && reader.CurrentDepth == depth + 2 && reader.ValueTextEquals("value"))
                {
                    reader.Read();
                    return reader.GetBytesFromBase64().Length;
                }
            }
        }

        return -1;
    }

    private static string Base64(ReadOnlySpan<byte> bytes) => Convert.ToBase64String(bytes);

    public void Dispose() => _http.Dispose();
}

/// <summary>Redis's protocol (RESP2) over one TCP connection: <c>SET K V</c> (+OK) and <c>GET K</c> (a bulk string, or nil).</summary>
internal sealed class RespKvClient : IKvClient
{
    private readonly string _endpoint;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private Socket? _socket;
    private int _filled;

    public RespKvClient(string endpoint)
    {
        _endpoint = endpoint;
    }

    public async Task PutAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken)
    {
        RespReply reply = await CallAsync(Command("SET", key, value.Span), cancellationToken).ConfigureAwait(false);
        if (reply.Kind != '+')
        {
            throw new InvalidOperationException($"SET answered '{reply.Kind}': {reply.Text}");
        }
    }

    public async Task<int> GetAsync(string key, CancellationToken cancellationToken)
    {
        RespReply reply = await CallAsync(Command("GET", key, default), cancellationToken).ConfigureAwait(false);
        return reply.Kind == '$' ? reply.Length : throw new InvalidOperationException($"GET answered '{reply.Kind}': {reply.Text}");
    }

    /// <summary>A RESP array of bulk strings: the command, the key and (when not empty) the value.</summary>
    internal static byte[] Command(string name, string key, ReadOnlySpan<byte> value)
    {
        var sb = new StringBuilder();
        int parts = value.IsEmpty ? 2 : 3;
        sb.Append('*').Append(parts).Append("\r\n");
        sb.Append('$').Append(name.Length).Append("\r\n").Append(name).Append("\r\n");
        sb.Append('$').Append(key.Length).Append("\r\n").Append(key).Append("\r\n");
        if (value.IsEmpty)
        {
            return Encoding.ASCII.GetBytes(sb.ToString());
        }

        sb.Append('$').Append(value.Length).Append("\r\n");
        byte[] head = Encoding.ASCII.GetBytes(sb.ToString());
        byte[] command = new byte[head.Length + value.Length + 2];
        head.CopyTo(command, 0);
        value.CopyTo(command.AsSpan(head.Length));
        command[^2] = (byte)'\r';
        command[^1] = (byte)'\n';
        return command;
    }

    private async Task<RespReply> CallAsync(byte[] command, CancellationToken cancellationToken)
    {
        try
        {
            return await ExchangeAsync(command, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // A request cut off (cancelled, failed) leaves its reply unread: start over on a new
            // connection so the next request does not read it.
            _socket?.Dispose();
            _socket = null;
            _filled = 0;
            throw;
        }
    }

    private async Task<RespReply> ExchangeAsync(byte[] command, CancellationToken cancellationToken)
    {
        if (_socket is null)
        {
            int colon = _endpoint.LastIndexOf(':');
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(_endpoint[..colon], int.Parse(_endpoint[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
            _socket = socket;
        }

        await _socket.SendAsync(command, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        while (true)
        {
            if (RespReply.TryParse(_buffer.AsSpan(0, _filled), out RespReply reply, out int consumed))
            {
                Buffer.BlockCopy(_buffer, consumed, _buffer, 0, _filled - consumed);
                _filled -= consumed;
                return reply;
            }

            if (_filled == _buffer.Length)
            {
                throw new InvalidOperationException("RESP reply larger than 64 KiB");
            }

            int read = await _socket.ReceiveAsync(_buffer.AsMemory(_filled), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new InvalidOperationException("connection closed");
            }

            _filled += read;
        }
    }

    public void Dispose() => _socket?.Dispose();
}

/// <summary>One RESP2 reply: its type byte, the line of a simple reply, the length of a bulk string (-1 for nil).</summary>
internal readonly record struct RespReply(char Kind, string Text, int Length)
{
    /// <summary>Parses one complete reply at the start of <paramref name="data"/>; false when more bytes are needed.</summary>
    /// <exception cref="FormatException">The bytes are not a RESP2 reply this client understands.</exception>
    public static bool TryParse(ReadOnlySpan<byte> data, out RespReply reply, out int consumed)
    {
        reply = default;
        consumed = 0;
        int lineEnd = data.IndexOf("\r\n"u8);
        if (lineEnd < 0)
        {
            return false;
        }

        char kind = (char)data[0];
        string line = Encoding.ASCII.GetString(data[1..lineEnd]);
        switch (kind)
        {
            case '+' or '-' or ':':
                reply = new RespReply(kind, line, line.Length);
                consumed = lineEnd + 2;
                return true;
            case '$':
                if (!int.TryParse(line, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out int length) || length < -1)
                {
                    throw new FormatException($"bad bulk length '{line}'");
                }

                if (length == -1)
                {
                    reply = new RespReply(kind, "", -1);
                    consumed = lineEnd + 2;
                    return true;
                }

                int end = lineEnd + 2 + length + 2;
                if (data.Length < end)
                {
                    return false;
                }

                if (data[end - 2] != '\r' || data[end - 1] != '\n')
                {
                    throw new FormatException("bulk string not ended by CRLF");
                }

                reply = new RespReply(kind, "", length);
                consumed = end;
                return true;
            default:
                throw new FormatException($"unexpected RESP type '{kind}'");
        }
    }
}
