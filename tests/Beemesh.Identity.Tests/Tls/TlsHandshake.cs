using System.Net;
using System.Net.Security;
using System.Net.Sockets;

namespace Beemesh.Identity.Tests.Tls;

/// <summary>
/// One TLS connection over loopback between a client and <paramref name="listener"/>'s accepted
/// socket: both handshakes, then a few bytes from client to server.
/// </summary>
internal static class TlsHandshake
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Connects, handshakes with the given options and checks that data flows; returns what
    /// <paramref name="inspect"/> makes of the server's and the client's streams. A refused handshake
    /// throws the client's error.
    /// </summary>
    public static async Task<T> RunAsync<T>(
        TcpListener listener, SslServerAuthenticationOptions serverOptions, SslClientAuthenticationOptions clientOptions,
        Func<SslStream, SslStream, T> inspect)
    {
        using var client = new TcpClient();
        Task<TcpClient> accept = listener.AcceptTcpClientAsync();
        await client.ConnectAsync((IPEndPoint)listener.LocalEndpoint).WaitAsync(Guard);
        using TcpClient accepted = await accept.WaitAsync(Guard);
        await using var serverTls = new SslStream(accepted.GetStream());
        await using var clientTls = new SslStream(client.GetStream());

        Task serverHandshake = serverTls.AuthenticateAsServerAsync(serverOptions);
        Task clientHandshake = clientTls.AuthenticateAsClientAsync(clientOptions);
        try
        {
            await clientHandshake.WaitAsync(Guard);
        }
        finally
        {
            // When the client refuses, the server's handshake fails too; only the client's error matters.
            if (!clientHandshake.IsCompletedSuccessfully)
            {
                client.Close();
                await Task.WhenAny(serverHandshake, Task.Delay(Guard));
            }
        }

        await serverHandshake.WaitAsync(Guard);
        T seen = inspect(serverTls, clientTls);

        // The tunnel carries data both ways.
        await clientTls.WriteAsync("ping"u8.ToArray());
        byte[] buffer = new byte[4];
        await serverTls.ReadExactlyAsync(buffer).AsTask().WaitAsync(Guard);
        Assert.Equal("ping"u8.ToArray(), buffer);
        // And back: the client reads what the server sent after its handshake (a TLS 1.3 client
        // takes the server's session tickets then, so the next handshake may resume).
        await serverTls.WriteAsync("pong"u8.ToArray());
        await clientTls.ReadExactlyAsync(buffer).AsTask().WaitAsync(Guard);
        Assert.Equal("pong"u8.ToArray(), buffer);
        return seen;
    }
}
