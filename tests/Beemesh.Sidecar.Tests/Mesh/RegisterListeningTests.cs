using System.Net;
using System.Net.Sockets;
using Beemesh.Agent.Client;
using Beemesh.Sidecar.Mesh;

namespace Beemesh.Sidecar.Tests.Mesh;

/// <summary>
/// The order of a sidecar's start: its tunnel endpoint listens before the workload is registered,
/// so the route the agent publishes never leads to a port that refuses.
/// </summary>
public sealed class RegisterListeningTests
{
    [Fact]
    public async Task TheTunnelEndpointListensWhenTheRegistrationReachesTheAgentAndKeepsAnEarlyCaller()
    {
        var registration = new WorkloadRegistration { Name = "api", Namespace = "default", Pid = Environment.ProcessId };
        using var early = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        string? advertised = null;

        (Socket listener, WorkloadRecord record) = await MeshSidecar.RegisterListeningAsync(
            new IPEndPoint(IPAddress.Any, 0),
            registration,
            async (r, ct) =>
            {
                // As a caller that learnt the route at once: the connection is not refused.
                advertised = r.TunnelEndpoint;
                await early.ConnectAsync(IPEndPoint.Parse(r.TunnelEndpoint!), ct);
                await early.SendAsync("early"u8.ToArray(), SocketFlags.None, ct);
                return new WorkloadRecord { Id = "api-1", Name = r.Name!, Namespace = r.Namespace!, TunnelEndpoint = r.TunnelEndpoint! };
            },
            CancellationToken.None);
        using (listener)
        {
            Assert.Equal("api-1", record.Id);
            // Bound to every address: advertised on loopback, with the port the kernel chose.
            Assert.Equal(new IPEndPoint(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndPoint!).Port).ToString(), advertised);
            Assert.Equal(advertised, registration.TunnelEndpoint);

            // The server starts later and still gets the early caller's bytes.
            using Socket accepted = await listener.AcceptAsync();
            var buffer = new byte[5];
            int read = 0;
            while (read < buffer.Length)
            {
                int n = await accepted.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None);
                Assert.NotEqual(0, n);
                read += n;
            }

            Assert.Equal("early"u8.ToArray(), buffer);
        }
    }

    [Fact]
    public async Task AFailedRegistrationReleasesTheEndpoint()
    {
        var registration = new WorkloadRegistration { Name = "api", Namespace = "default", Pid = Environment.ProcessId };
        string? advertised = null;
        await Assert.ThrowsAsync<AgentApiException>(() => MeshSidecar.RegisterListeningAsync(
            new IPEndPoint(IPAddress.Loopback, 0),
            registration,
            (r, _) =>
            {
                advertised = r.TunnelEndpoint;
                throw new AgentApiException(HttpStatusCode.Forbidden, "refused");
            },
            CancellationToken.None));

        using var caller = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        SocketException refused = await Assert.ThrowsAsync<SocketException>(async () => await caller.ConnectAsync(IPEndPoint.Parse(advertised!)));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }
}
