using System.Net;
using System.Net.Sockets;
using Beemesh.LoadTests.Scenarios;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>
/// Open-loop request/response latency: requests are injected at a fixed rate, each sends one
/// 16-byte request and reads the 16-byte echo, all over ONE kept connection. A request that
/// arrives while the previous one is still in flight waits for it, and that wait counts in its
/// latency (open-loop measurement: no coordinated omission).
/// </summary>
public static class RateClient
{
    /// <summary>Name of the step that times one request/response.</summary>
    public const string StepName = "request";

    /// <summary>Bytes per request (and per response).</summary>
    public const int MessageBytes = 16;

    /// <summary>Injects <paramref name="rate"/> requests per second for <paramref name="duration"/> after a 1 s warm-up.</summary>
    public static ScenarioStats Run(string host, int port, TimeSpan duration, int rate, CancellationToken cancellationToken)
    {
        Socket? socket = null;
        var gate = new SemaphoreSlim(1, 1);
        byte[] request = new byte[MessageBytes];
        byte[] response = new byte[MessageBytes];
        Scenario scenario = Scenario.Create("rate", context => Step.Run(StepName, context, async () =>
            {
                await gate.WaitAsync(context.ScenarioCancellationToken).ConfigureAwait(false);
                try
                {
                    await socket!.SendAsync(request, SocketFlags.None, context.ScenarioCancellationToken).ConfigureAwait(false);
                    int got = 0;
                    while (got < MessageBytes)
                    {
                        int read = await socket.ReceiveAsync(response.AsMemory(got), SocketFlags.None, context.ScenarioCancellationToken).ConfigureAwait(false);
                        if (read == 0)
                        {
                            return Response.Fail("connection closed");
                        }

                        got += read;
                    }

                    return Response.Ok(sizeBytes: 2 * MessageBytes);
                }
                finally
                {
                    gate.Release();
                }
            }))
            .WithInit(async init =>
            {
                IPEndPoint endpoint = await MeshEndpoint.ResolveAsync(host, port, init.CancellationToken).ConfigureAwait(false);
                socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(endpoint, init.CancellationToken).ConfigureAwait(false);
            })
            .WithClean(_ =>
            {
                socket?.Dispose();
                return Task.CompletedTask;
            })
            .WithWarmUpDuration(TimeSpan.FromSeconds(1))
            .WithLoadSimulations(LoadSimulation.Inject(rate, TimeSpan.FromSeconds(1), duration));
        return ScenarioRunner.RunAsync(cancellationToken, scenario).GetAwaiter().GetResult()[0];
    }
}
