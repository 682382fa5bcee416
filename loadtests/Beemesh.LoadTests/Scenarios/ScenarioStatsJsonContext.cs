using System.Text.Json.Serialization;

namespace Beemesh.LoadTests.Scenarios;

/// <summary>Source-generated JSON for statistics, so clients inside a namespace can hand results back (no reflection).</summary>
[JsonSourceGenerationOptions(WriteIndented = false)]
[JsonSerializable(typeof(ScenarioStats))]
[JsonSerializable(typeof(ScenarioStats[]))]
public sealed partial class ScenarioStatsJsonContext : JsonSerializerContext;
