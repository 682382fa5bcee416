namespace Beemesh.LoadTests.Scenarios;

/// <summary>What a scenario's init or clean hook receives.</summary>
/// <param name="ScenarioName">The scenario being set up or torn down.</param>
/// <param name="CancellationToken">Cancelled when the whole run is aborted.</param>
public sealed record ScenarioInitContext(string ScenarioName, CancellationToken CancellationToken);
