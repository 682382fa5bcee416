using System.Net;

namespace Beemesh.LoadTests.Bench;

/// <summary>A started implementation: its process and the in-namespace address that reaches host loopback.</summary>
internal sealed class RunningNetstack(GuardedProcess process, IPAddress hostLoopbackAddress) : IAsyncDisposable
{
    /// <summary>Pid of the implementation process (for VmRSS).</summary>
    public int Pid => process.Pid;

    /// <summary>Address that, from inside the namespace, lands on the host's 127.0.0.1.</summary>
    public IPAddress HostLoopbackAddress { get; } = hostLoopbackAddress;

    public bool IsAlive => process.IsAlive;

    public string LogTail() => process.LogTail();

    public ValueTask DisposeAsync() => process.DisposeAsync();
}
