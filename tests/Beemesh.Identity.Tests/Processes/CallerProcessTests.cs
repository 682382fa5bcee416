using System.Diagnostics;
using System.Net.Sockets;
using Beemesh.Spiffe.Processes;

namespace Beemesh.Identity.Tests.Processes;

public sealed class CallerProcessTests
{
    [Theory]
    [InlineData("42 (sleep) S 7 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 2000000 100", 7, 123456UL)]
    [InlineData("42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 99 2000000 100\n", 1, 99UL)]
    [InlineData("42 (x y)) R 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", 0, 5UL)]
    public void StatIsParsedFromTheLastParenthesis(string text, int parent, ulong start)
    {
        ProcessStat stat = ProcessStat.Parse(text)!.Value;
        Assert.Equal(parent, stat.ParentProcessId);
        Assert.Equal(start, stat.StartTime);
    }

    [Theory]
    [InlineData("")]
    [InlineData("42 sleep S 7")]
    [InlineData("42 (sleep) S 7 42")]
    [InlineData("42 (sleep) S x 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456")]
    [InlineData("42 (sleep) S 7 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 -5")]
    public void MalformedStatIsNull(string text) => Assert.Null(ProcessStat.Parse(text));

    [Fact]
    public void OwnStatIsReadableAndStable()
    {
        ProcessStat first = ProcessStat.Read(Environment.ProcessId)!.Value;
        Assert.Equal(first, ProcessStat.Read(Environment.ProcessId));
        Assert.True(first.ParentProcessId > 0);
        Assert.Null(ProcessStat.Read(0));
        Assert.Null(ProcessStat.Read(int.MaxValue));
    }

    [Fact]
    public async Task BindingEndsWhenTheProcessExits()
    {
        using Process child = Process.Start(new ProcessStartInfo("sleep", "30") { UseShellExecute = false })!;
        using CallerProcess caller = CallerProcess.Open(child.Id)!;
        Assert.True(caller.HasPidFd);
        Assert.True(caller.IsAlive);
        Assert.True(ProcessTree.IsSelfOrDescendant(child.Id, Environment.ProcessId));
        Assert.False(ProcessTree.IsSelfOrDescendant(Environment.ProcessId, child.Id));

        child.Kill();
        await child.WaitForExitAsync();
        Assert.False(caller.IsAlive);
        Assert.Null(CallerProcess.Open(child.Id) is { IsAlive: true } ? "alive" : null);
    }

    [Fact]
    public async Task PeerOfAUnixSocketIsBound()
    {
        string path = Path.Combine(Path.GetTempPath(), $"bm-cp-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40] + ".sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen();
        try
        {
            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await client.ConnectAsync(new UnixDomainSocketEndPoint(path));
            using Socket accepted = await listener.AcceptAsync();
            using CallerProcess caller = CallerProcess.FromSocket(accepted)!;
            Assert.Equal(Environment.ProcessId, caller.ProcessId);
            Assert.Equal(ProcessStat.Read(Environment.ProcessId)!.Value.StartTime, caller.StartTime);
            Assert.True(caller.IsAlive);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
