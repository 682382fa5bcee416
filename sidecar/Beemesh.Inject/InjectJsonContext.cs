using System.Text.Json.Serialization;
using k8s.Models;

namespace Beemesh.Inject;

/// <summary>
/// The System.Text.Json metadata of the Kubernetes models the injector reads and writes, and of
/// the types they reach, with the options of the models' own context (camelCase, nulls left out).
/// The models' own context covers every Kubernetes type: referencing it compiled all of them into
/// the NativeAOT executable, whose type metadata every process of it (each sidecar) rewrites at
/// start-up in pages of its own (loadtests/reports/memory.md).
/// </summary>
[JsonSourceGenerationOptions(
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(V1Pod))]
[JsonSerializable(typeof(V1Deployment))]
[JsonSerializable(typeof(V1StatefulSet))]
[JsonSerializable(typeof(V1DaemonSet))]
[JsonSerializable(typeof(V1Job))]
[JsonSerializable(typeof(V1ReplicaSet))]
[JsonSerializable(typeof(V1CronJob))]
[JsonSerializable(typeof(V1Container))]
[JsonSerializable(typeof(V1Volume))]
[JsonSerializable(typeof(V1PodDNSConfig))]
[JsonSerializable(typeof(V1Namespace))]
[JsonSerializable(typeof(V1ServiceAccount))]
internal sealed partial class InjectJsonContext : JsonSerializerContext
{
}
