using System.Net;
using System.Net.Sockets;
using Beemesh.LoadTests.Scenarios;

namespace Beemesh.LoadTests.Clients;

/// <summary>
/// Measures request/response latency: one connection, one byte out, one byte back, over and
/// over. Runs inside the namespace under test against an echo server on the host.
/// </summary>
public static class PingPongClient
{
    /// <summary>Name of the step that times one round trip.</summary>
    public const string StepName = "ping-pong";

    /// <summary>Runs one ping-pong loop for <paramref name="duration"/> after a 1 s warm-up.</summary>
    public static ScenarioStats Run(IPAddress host, int port, TimeSpan duration, CancellationToken cancellationToken)
    {
        var endpoint = new IPEndPoint(host, port);
        Socket? socket = null;
        byte[] ping = [0x2a];
        byte[] pong = new byte[1];
        Scenario scenario = Scenario.Create("ping-pong", context => Step.Run(StepName, context, async () =>
            {
                await socket!.SendAsync(ping, SocketFlags.None, context.ScenarioCancellationToken).ConfigureAwait(false);
                int read = await socket.ReceiveAsync(pong, SocketFlags.None, context.ScenarioCancellationToken).ConfigureAwait(false);
                return read == 1 ? Response.Ok(sizeBytes: 2) : Response.Fail("connection closed");
            }))
            .WithInit(async init =>
            {
                socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(endpoint, init.CancellationToken).ConfigureAwait(false);
            })
            .WithClean(_ =>
            {
                socket?.Dispose();
                return Task.CompletedTask;
            })
            .WithWarmUpDuration(TimeSpan.FromSeconds(1))
            .WithLoadSimulations(LoadSimulation.KeepConstant(1, duration));
        return ScenarioRunner.RunAsync(cancellationToken, scenario).GetAwaiter().GetResult()[0];
    }
}
