namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// A test class with one agent of its own (<see cref="MeshAgentProcess"/>), started before each test
/// and stopped after it; <see cref="Agent"/> is null when it could not be started, and each test
/// skips then.
/// </summary>
public abstract class MeshAgentTest : IAsyncLifetime
{
    /// <summary>The test's agent, or null when it could not be started.</summary>
    protected MeshAgentProcess? Agent { get; private set; }

    /// <inheritdoc />
    public async Task InitializeAsync() => Agent = await MeshAgentProcess.StartAsync();

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (Agent is not null)
        {
            await Agent.DisposeAsync();
        }
    }
}
