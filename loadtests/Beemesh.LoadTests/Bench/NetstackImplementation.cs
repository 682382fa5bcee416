namespace Beemesh.LoadTests.Bench;

/// <summary>One user-mode network stack under comparison.</summary>
internal abstract class NetstackImplementation(string name)
{
    /// <summary>Short name used in the report (slirp4netns, pasta, beemesh).</summary>
    public string Name { get; } = name;

    /// <summary>Why it cannot run at all (binary missing), or null when it can.</summary>
    public abstract string? Unavailable { get; }

    /// <summary>Connects <paramref name="ns"/> to the host and returns once the stack is ready.</summary>
    public abstract Task<RunningNetstack> StartAsync(NetworkNamespace ns, int mtu, string workDirectory, CommandLog log, CancellationToken cancellationToken);

    /// <summary>Version line for the report.</summary>
    public abstract Task<string> VersionAsync(CancellationToken cancellationToken);

    protected static async Task WaitUntilAsync(Func<Task<bool>> ready, GuardedProcess process, string what, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            if (await ready().ConfigureAwait(false))
            {
                return;
            }

            if (!process.IsAlive)
            {
                string tail = process.LogTail();
                throw new InvalidOperationException($"{what} exited before it was ready{(tail.Length > 0 ? ": " + tail : "")}");
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }

        throw new TimeoutException($"{what} not ready within 15 s");
    }
}
