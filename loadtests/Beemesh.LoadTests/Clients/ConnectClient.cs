using System.Net;
using System.Net.Sockets;
using Beemesh.LoadTests.Scenarios;

namespace Beemesh.LoadTests.Clients;

/// <summary>
/// Measures TCP connection setup: each invocation connects, waits for the server's close
/// (the server accepts and closes at once) and closes. Runs inside the namespace under test.
/// </summary>
public static class ConnectClient
{
    /// <summary>Name of the step that times one connect-to-close cycle.</summary>
    public const string StepName = "connect";

    /// <summary>Runs <paramref name="copies"/> concurrent connect loops for <paramref name="duration"/> after a 1 s warm-up.</summary>
    public static ScenarioStats Run(IPAddress host, int port, TimeSpan duration, int copies, CancellationToken cancellationToken)
    {
        var endpoint = new IPEndPoint(host, port);
        Scenario scenario = Scenario.Create("connect", context => Step.Run(StepName, context, async () =>
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.ScenarioCancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                await socket.ConnectAsync(endpoint, timeout.Token).ConfigureAwait(false);
                byte[] buffer = new byte[1];
                int read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                return read == 0 ? Response.Ok() : Response.Fail("server sent data instead of closing");
            }))
            .WithWarmUpDuration(TimeSpan.FromSeconds(1))
            .WithLoadSimulations(LoadSimulation.KeepConstant(copies, duration));
        return ScenarioRunner.RunAsync(cancellationToken, scenario).GetAwaiter().GetResult()[0];
    }
}
