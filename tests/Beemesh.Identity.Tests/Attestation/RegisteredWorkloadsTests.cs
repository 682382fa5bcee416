using Beemesh.Identity.Attestation;
using Beemesh.Spiffe;

namespace Beemesh.Identity.Tests.Attestation;

public sealed class RegisteredWorkloadsTests
{
    private static readonly SpiffeId Web = SpiffeId.Parse("spiffe://example.org/web");

    [Fact]
    public void RegisteredProcessIsAttested()
    {
        var workloads = new RegisteredWorkloads();
        Assert.True(workloads.Register(Environment.ProcessId, Web));
        Assert.Equal(Web, workloads.Attest(new PeerCredentials(Environment.ProcessId, 0, 0)));
    }

    [Fact]
    public void DescendantOfRegisteredProcessIsAttested()
    {
        int parent = ParentOf(Environment.ProcessId);
        var workloads = new RegisteredWorkloads();
        Assert.True(workloads.Register(parent, Web));
        Assert.Equal(Web, workloads.Attest(new PeerCredentials(Environment.ProcessId, 0, 0)));
    }

    [Fact]
    public void UnregisteredProcessIsNotAttested()
    {
        var workloads = new RegisteredWorkloads();
        Assert.Null(workloads.Attest(new PeerCredentials(Environment.ProcessId, 0, 0)));
        Assert.True(workloads.Register(Environment.ProcessId, Web));
        Assert.True(workloads.Unregister(Environment.ProcessId));
        Assert.Null(workloads.Attest(new PeerCredentials(Environment.ProcessId, 0, 0)));
    }

    [Fact]
    public void MissingProcessCannotBeRegistered() =>
        Assert.False(new RegisteredWorkloads().Register(int.MaxValue, Web));

    private static int ParentOf(int pid)
    {
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("PPid:", StringComparison.Ordinal))
            {
                return int.Parse(line.AsSpan(5).Trim());
            }
        }

        throw new InvalidOperationException("no PPid");
    }
}
