using System.Net;
using System.Net.Sockets;
using Beemesh.Spiffe.Serving;

namespace Beemesh.Spiffe.Tests.Serving;

public sealed class AcceptLoopTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    private static Socket Listen()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(8);
        return listener;
    }

    [Fact]
    public async Task StopWaitsForEveryTrackedConnectionAndCancelsStopping()
    {
        Socket listener = Listen();
        var endpoint = (IPEndPoint)listener.LocalEndPoint!;
        var accepted = new TaskCompletionSource<Socket>(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var loop = new AcceptLoop(listener, client =>
        {
            accepted.TrySetResult(client);
            return release.Task;
        });
        loop.Start();

        using var caller = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await caller.ConnectAsync(endpoint).WaitAsync(Guard);
        using Socket server = await accepted.Task.WaitAsync(Guard);
        Assert.False(loop.Stopping.IsCancellationRequested);

        Task stop = loop.StopAsync();
        Assert.True(loop.IsStopping);
        Assert.True(loop.Stopping.IsCancellationRequested);
        // The connection's task has not ended: the stop cannot have either.
        Assert.False(stop.IsCompleted);

        release.SetResult();
        await stop.WaitAsync(Guard);

        // The listener is closed: nobody is accepted any more.
        using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await Assert.ThrowsAsync<SocketException>(() => late.ConnectAsync(endpoint).WaitAsync(Guard));

        // A second stop returns at once.
        await loop.StopAsync().WaitAsync(Guard);
    }

    [Fact]
    public async Task HandlerReturningNullIsNotWaitedFor()
    {
        Socket listener = Listen();
        var endpoint = (IPEndPoint)listener.LocalEndPoint!;
        var handled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int calls = 0;
        var loop = new AcceptLoop(listener, client =>
        {
            client.Dispose();
            Interlocked.Increment(ref calls);
            handled.TrySetResult();
            return null;
        });
        loop.Start();
        loop.Start();

        using var caller = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await caller.ConnectAsync(endpoint).WaitAsync(Guard);
        await handled.Task.WaitAsync(Guard);
        await loop.StopAsync().WaitAsync(Guard);
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task FaultedConnectionOfASocketErrorCountsAsEnded()
    {
        Socket listener = Listen();
        var endpoint = (IPEndPoint)listener.LocalEndPoint!;
        var handled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var fail = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var loop = new AcceptLoop(listener, async client =>
        {
            using (client)
            {
                handled.TrySetResult();
                await fail.Task;
                throw new SocketException((int)SocketError.ConnectionReset);
            }
        });
        loop.Start();

        using var caller = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await caller.ConnectAsync(endpoint).WaitAsync(Guard);
        await handled.Task.WaitAsync(Guard);
        Task stop = loop.StopAsync();
        fail.SetResult();
        await stop.WaitAsync(Guard);
    }
}
