using System.Text.Json.Serialization;

namespace Beemesh.Agent.Client;

/// <summary>Source-generated JSON metadata for the admin API (no reflection, so NativeAOT-safe).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(WorkloadRegistration))]
[JsonSerializable(typeof(WorkloadRecord))]
[JsonSerializable(typeof(ServiceRecord))]
[JsonSerializable(typeof(List<WorkloadRecord>))]
[JsonSerializable(typeof(PolicySet))]
[JsonSerializable(typeof(WorkloadSet))]
[JsonSerializable(typeof(PolicyApplyResult))]
[JsonSerializable(typeof(ConnectionReport))]
[JsonSerializable(typeof(AgentStatus))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(MembersReport))]
[JsonSerializable(typeof(NodeRecordPayload))]
[JsonSerializable(typeof(WorkloadRecord[]))]
public sealed partial class AgentJsonContext : JsonSerializerContext
{
}
