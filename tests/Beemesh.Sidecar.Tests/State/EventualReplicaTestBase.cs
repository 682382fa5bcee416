using System.Text;
using Beemesh.Identity.Authority;
using Beemesh.Sidecar.State;
using Beemesh.Sidecar.State.Eventual;
using Beemesh.Sidecar.State.Strong;
using Beemesh.Sidecar.Telemetry;
using Beemesh.State.Api;
using Beemesh.State.Eventual;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>
/// What the tests of eventual replicas over real TLS share: a temporary directory, a certificate
/// authority, a fake clock that never advances (so pushes and rounds happen only when a test calls
/// them), replicas of the <c>statestore</c> store started on a context, and the things a test
/// started, disposed in reverse order.
/// </summary>
public abstract class EventualReplicaTestBase : IAsyncLifetime
{
    private readonly List<IAsyncDisposable> _owned = [];

    /// <summary>The test's temporary directory.</summary>
    private protected TempDirectory Dir { get; } = new();

    /// <summary>The replicas' clock: never advanced.</summary>
    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero));

    /// <summary>The trust domain's authority (example.org), created in <see cref="Dir"/>.</summary>
    protected CertificateAuthority Authority { get; private set; } = null!;

    /// <summary>Creates the authority; a derived class starts more after it.</summary>
    public virtual Task InitializeAsync()
    {
        Authority = CertificateAuthority.LoadOrCreate(Dir.File("ca"));
        return Task.CompletedTask;
    }

    /// <summary>Disposes what the test started, newest first, then the authority and the directory.</summary>
    public async Task DisposeAsync()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }

        Authority.Dispose();
        Dir.Dispose();
    }

    /// <summary>Disposes <paramref name="value"/> at the end of the test (before what was owned earlier).</summary>
    protected T Own<T>(T value) where T : IAsyncDisposable
    {
        _owned.Add(value);
        return value;
    }

    /// <summary>Starts replica <paramref name="id"/> of the <c>statestore</c> store on <paramref name="context"/>, with its state API and counters.</summary>
    protected (EventualReplica Replica, EventualStateStore Api, EventualStateCounters Counters) StartReplica(ulong id, StrongStoreContext context)
    {
        var counters = new EventualStateCounters();
        EventualReplica replica = Own(EventualReplica.Start(
            new EventualStore("statestore", id, Time), context, new EventualReplicationOptions(), counters, NullLoggerFactory.Instance, Time));
        return (replica, new EventualStateStore(replica.Replicator.Store, replica.Replicator), counters);
    }

    /// <summary>Writes <paramref name="value"/> under the workload kv's <paramref name="key"/>; asserts it was applied.</summary>
    protected static async Task SaveAsync(EventualStateStore store, string key, string value) =>
        Assert.Equal(StateWriteStatus.Applied, (await store.WriteAsync([StateOperation.Upsert("kv||" + key, Encoding.UTF8.GetBytes(value))], CancellationToken.None)).Status);

    /// <summary>The value of the workload kv's <paramref name="key"/>, or null.</summary>
    protected static string? Read(EventualStateStore store, string key) =>
        store.Store.Get("kv||" + key) is StateValue v ? Encoding.UTF8.GetString(v.Value) : null;
}
