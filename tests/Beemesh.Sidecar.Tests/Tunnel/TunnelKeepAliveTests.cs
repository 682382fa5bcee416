using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Beemesh.Agent.Client;
using Beemesh.Sidecar.Tunnel.Http2;
using Beemesh.Spiffe.X509;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Sidecar.Tests.Tunnel;

/// <summary>
/// The tunnel server's keep-alive with a caller that stops reading (as a stopped or vanished
/// process does): the server pings it, and a timeout later closes the connection, resets the
/// workload's side of every flow on it and counts the loss.
/// </summary>
public sealed class TunnelKeepAliveTests
{
    private static readonly TimeSpan Functional = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_caller_that_stops_answering_loses_its_flow_and_the_workload_gets_a_reset()
    {
        var time = new FakeTimeProvider();
        await using MeshFixture mesh = await MeshFixture.StartAsync(apiKeepAlive: TimeSpan.FromSeconds(5), keepAliveTime: time);
        (Http2Connection caller, FreezableStream transport) = await ConnectAsWebAsync(mesh);
        await using (caller)
        {
            await using Http2Stream flow = await caller.ConnectAsync(new IPEndPoint(mesh.Api.MeshAddress, 7).ToString()).WaitAsync(Functional);
            Assert.Equal(200, flow.Status);
            await flow.WriteAsync("x"u8.ToArray());
            await flow.FlushAsync();
            byte[] echo = new byte[1];
            Assert.Equal(1, await flow.ReadAsync(echo).AsTask().WaitAsync(Functional));

            // From here the caller reads nothing: the server's PING goes unanswered.
            transport.Freeze();
            time.Advance(TimeSpan.FromSeconds(5));
            Assert.Empty(mesh.Api.Server.Connections.Counters.TunnelConnectionsLost);
            time.Advance(TimeSpan.FromSeconds(5));

            Assert.Equal(SocketError.ConnectionReset.ToString(), await mesh.Api.Guest.EndingFeed.Reader.ReadAsync().AsTask().WaitAsync(Functional));
            Assert.Equal(1, mesh.Api.Server.Connections.Counters.TunnelConnectionsLost["keepalive_timeout"]);
            Assert.Equal(1, mesh.Api.Server.Connections.Counters.TunnelFlowsLost["keepalive_timeout"]);
        }
    }

    [Fact]
    public async Task A_caller_that_answers_keeps_its_idle_flow_through_many_intervals()
    {
        var time = new FakeTimeProvider();
        await using MeshFixture mesh = await MeshFixture.StartAsync(apiKeepAlive: TimeSpan.FromSeconds(5), keepAliveTime: time);
        (Http2Connection caller, FreezableStream transport) = await ConnectAsWebAsync(mesh);
        await using (caller)
        {
            await using Http2Stream flow = await caller.ConnectAsync(new IPEndPoint(mesh.Api.MeshAddress, 7).ToString()).WaitAsync(Functional);
            for (int i = 0; i < 4; i++)
            {
                // Silence: the server pings. The caller's first PING is answered after the server's
                // PING reached the caller (one output queue each way), its second after the server
                // read the caller's ACK: only then does the clock move on.
                time.Advance(TimeSpan.FromSeconds(5));
                await caller.PingAsync().WaitAsync(Functional);
                await caller.PingAsync().WaitAsync(Functional);
                time.Advance(TimeSpan.FromSeconds(4));
            }

            await flow.WriteAsync("y"u8.ToArray());
            await flow.FlushAsync();
            byte[] echo = new byte[1];
            Assert.Equal(1, await flow.ReadAsync(echo).AsTask().WaitAsync(Functional));
            Assert.Empty(mesh.Api.Server.Connections.Counters.TunnelConnectionsLost);
            Assert.True(mesh.Api.Guest.Endings.IsEmpty);
        }
    }

    [Fact]
    public void The_keepalive_variable_takes_interval_and_timeout_or_off_and_refuses_the_rest()
    {
        Assert.Equal((TunnelKeepAlive.DefaultInterval, TunnelKeepAlive.DefaultTimeout), TunnelKeepAlive.Parse(null));
        Assert.Equal((TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2.5)), TunnelKeepAlive.Parse("1,2.5"));
        Assert.Equal((TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(3)), TunnelKeepAlive.Parse("3"));
        Assert.Null(TunnelKeepAlive.Parse("off").Interval);
        foreach (string bad in new[] { "0", "-1", "1,2,3", "ten", "1,", "99999" })
        {
            FormatException e = Assert.Throws<FormatException>(() => TunnelKeepAlive.Parse(bad));
            Assert.Contains(TunnelKeepAlive.Variable, e.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>An HTTP/2 client with web's SVID to api's tunnel server, over a transport that can stop reading; no keep-alive of its own.</summary>
    private static async Task<(Http2Connection, FreezableStream)> ConnectAsWebAsync(MeshFixture mesh)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(mesh.Api.Server.Endpoint);
        var transport = new FreezableStream(new NetworkStream(socket, ownsSocket: true));
        var tls = new SslStream(transport, leaveInnerStreamOpen: false);
        SslClientAuthenticationOptions ssl = SpiffeTls.CreateClientOptions(mesh.Web.Source, id => id == mesh.Api.Id);
        ssl.ApplicationProtocols = [SslApplicationProtocol.Http2];
        ssl.TargetHost = string.Empty;
        await tls.AuthenticateAsClientAsync(ssl).WaitAsync(Functional);
        return (Http2Connection.StartClient(tls), transport);
    }

    /// <summary>
    /// A transport whose reads stop for good once frozen (what arrives after is never handed on, as
    /// in a stopped process); writes go on.
    /// </summary>
    private sealed class FreezableStream(Stream inner) : Stream
    {
        private readonly TaskCompletionSource _disposed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private volatile bool _frozen;

        public void Freeze() => _frozen = true;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!_frozen)
            {
                int read = await inner.ReadAsync(buffer, cancellationToken);
                if (!_frozen)
                {
                    return read;
                }
            }

            await _disposed.Task.WaitAsync(cancellationToken);
            return 0;
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.WriteAsync(buffer, offset, count, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _disposed.TrySetResult();
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
