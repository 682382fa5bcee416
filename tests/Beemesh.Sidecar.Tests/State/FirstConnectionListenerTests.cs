using System.Net;
using System.Net.Sockets;
using Beemesh.Sidecar.State;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Sidecar.Tests.State;

public sealed class FirstConnectionListenerTests
{
    [Fact]
    public async Task AcceptedConnectionsSendSmallWritesAtOnce()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen(8);
        var endPoint = new FirstConnectionEndPoint(socket);
        using var factory = new FirstConnectionListenerFactory(NullLoggerFactory.Instance);
        await using IConnectionListener listener = await factory.BindAsync(endPoint);

        // The first connection (accepted before any server existed) and a later one.
        foreach (int _ in new[] { 1, 2 })
        {
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync((IPEndPoint)socket.LocalEndPoint!);
            ConnectionContext? connection = await listener.AcceptAsync();
            Assert.NotNull(connection);
            Socket accepted = connection.Features.Get<IConnectionSocketFeature>()!.Socket;
            Assert.True(accepted.NoDelay);
            await connection.DisposeAsync();
        }
    }
}
