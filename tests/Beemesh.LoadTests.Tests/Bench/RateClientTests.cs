using System.Net;
using System.Net.Sockets;
using Beemesh.LoadTests.Bench;
using Beemesh.LoadTests.MeshBench;
using Beemesh.LoadTests.Scenarios;
using Xunit;

namespace Beemesh.LoadTests.Tests.Bench;

public sealed class RateClientTests
{
    [Fact]
    public async Task Measure_SendsExactlyRateTimesDuration_AfterTheWarmUp()
    {
        await using HostTcpServer echo = HostTcpServer.Echo();
        using Socket socket = await ConnectAsync(echo.Port);

        ScenarioStats stats = RateClient.Measure(socket, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(500), 200, CancellationToken.None);

        StepStats step = stats.GetStep(RateClient.StepName);
        Assert.Equal(100, step.RequestCount);
        Assert.Equal(100, step.OkCount);
        Assert.Equal(0, step.FailCount);
        Assert.Equal(100 * 2 * RateClient.MessageBytes, step.Bytes);
        Assert.Null(step.FirstFailure);
        Assert.True(step.Latency.MinUs > 0);
        Assert.True(step.Latency.P50Us <= step.Latency.MaxUs);
        Assert.Equal(1, echo.Accepted);
    }

    [Fact]
    public async Task Measure_StopsAtTheFirstFailure_AndSaysWhy()
    {
        await using HostTcpServer closer = HostTcpServer.AcceptAndClose();
        using Socket socket = await ConnectAsync(closer.Port);

        ScenarioStats stats = RateClient.Measure(socket, TimeSpan.Zero, TimeSpan.FromSeconds(1), 100, CancellationToken.None);

        StepStats step = stats.GetStep(RateClient.StepName);
        Assert.Equal(1, step.RequestCount);
        Assert.Equal(0, step.OkCount);
        Assert.Equal(1, step.FailCount);
        Assert.NotNull(step.FirstFailure);
    }

    [Fact]
    public async Task Measure_FailingDuringWarmUp_Throws()
    {
        await using HostTcpServer closer = HostTcpServer.AcceptAndClose();
        using Socket socket = await ConnectAsync(closer.Port);

        var ex = Assert.Throws<InvalidOperationException>(() =>
            RateClient.Measure(socket, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), 100, CancellationToken.None));
        Assert.Contains("warm-up", ex.Message, StringComparison.Ordinal);
    }

    private static async Task<Socket> ConnectAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        return socket;
    }
}
