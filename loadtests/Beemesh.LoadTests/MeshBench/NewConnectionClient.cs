using System.Net;
using System.Net.Sockets;
using Beemesh.LoadTests.Scenarios;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>
/// New connections per second: each invocation connects, sends one byte, reads its echo and
/// closes, with <c>copies</c> loops running back to back.
/// </summary>
public static class NewConnectionClient
{
    /// <summary>Name of the step that times one connect, round trip and close.</summary>
    public const string StepName = "connection";

    /// <summary>Runs <paramref name="copies"/> concurrent loops for <paramref name="duration"/> after a 1 s warm-up.</summary>
    public static ScenarioStats Run(string host, int port, TimeSpan duration, int copies, CancellationToken cancellationToken)
    {
        IPEndPoint? endpoint = null;
        Scenario scenario = Scenario.Create("connections", context => Step.Run(StepName, context, async () =>
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.ScenarioCancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                await socket.ConnectAsync(endpoint!, timeout.Token).ConfigureAwait(false);
                byte[] buffer = [0x2a];
                await socket.SendAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                int read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                return read == 1 ? Response.Ok(sizeBytes: 2) : Response.Fail("closed before the echo");
            }))
            .WithInit(async init => endpoint = await MeshEndpoint.ResolveAsync(host, port, init.CancellationToken).ConfigureAwait(false))
            .WithWarmUpDuration(TimeSpan.FromSeconds(1))
            .WithLoadSimulations(LoadSimulation.KeepConstant(copies, duration));
        return ScenarioRunner.RunAsync(cancellationToken, scenario).GetAwaiter().GetResult()[0];
    }
}
