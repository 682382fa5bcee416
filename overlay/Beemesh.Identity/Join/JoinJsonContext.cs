using System.Text.Json.Serialization;

namespace Beemesh.Identity.Join;

/// <summary>Source-generated JSON for the join exchange and the token store (no reflection).</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(JoinMessage))]
[JsonSerializable(typeof(JoinTokenStore.TokenFile))]
[JsonSerializable(typeof(NodeRegistry.RegistryFile))]
internal sealed partial class JoinJsonContext : JsonSerializerContext;
