using Beemesh.Identity.Storage;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Beemesh.Agent.Client;

namespace Beemesh.Agent.State;

/// <summary>The contents of <c>STATE/state/policies.json</c>.</summary>
internal sealed class StoredPolicies
{
    /// <summary>Layout of the file; 1.</summary>
    public int Format { get; set; } = 1;

    /// <summary>The policy version the policies were stored at.</summary>
    public long Version { get; set; }

    public List<PolicyDocument> Policies { get; set; } = [];
}

/// <summary>The contents of <c>STATE/state/workloads.json</c>.</summary>
internal sealed class StoredWorkloads
{
    /// <summary>Layout of the file; 1.</summary>
    public int Format { get; set; } = 1;

    public long Version { get; set; }

    /// <summary>The last workload id handed out (ids are never reused).</summary>
    public long LastId { get; set; }

    /// <summary>Mesh address of every <c>namespace/name</c> ever registered, so names keep their addresses.</summary>
    public Dictionary<string, string> Addresses { get; set; } = [];

    public List<StoredWorkload> Workloads { get; set; } = [];
}

/// <summary>A registration and the start time of its process (<c>/proc/PID/stat</c> field 22).</summary>
internal sealed class StoredWorkload
{
    public WorkloadRecord Record { get; set; } = new();

    public ulong StartTime { get; set; }

    /// <summary>The process that registered the workload (its sidecar), so a restart keeps it a sidecar.</summary>
    public int RegistrarPid { get; set; }

    /// <summary>Start time of <see cref="RegistrarPid"/> (<c>/proc/PID/stat</c> field 22).</summary>
    public ulong RegistrarStartTime { get; set; }
}

/// <summary>The contents of <c>STATE/state/mesh-block.json</c>: the block of the mesh CIDR this node claims.</summary>
internal sealed class StoredMeshBlock
{
    /// <summary>Layout of the file; 1.</summary>
    public int Format { get; set; } = 1;

    /// <summary>The block, e.g. <c>10.200.7.0/24</c>.</summary>
    public string Block { get; set; } = string.Empty;
}

/// <summary>Source-generated JSON metadata of the state files.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(StoredPolicies))]
[JsonSerializable(typeof(StoredWorkloads))]
[JsonSerializable(typeof(StoredMeshBlock))]
internal sealed partial class StateJsonContext : JsonSerializerContext
{
}

/// <summary>Reading and writing the agent's state files.</summary>
internal static class StateFile
{
    /// <summary>Subdirectory of the state directory that holds the state files.</summary>
    public const string DirectoryName = "state";

    /// <summary>
    /// Loads <paramref name="path"/>; null when it does not exist. A file that does not parse, or
    /// that <paramref name="check"/> refuses (one line, or null when fine), throws
    /// <see cref="InvalidOperationException"/> naming the file: starting without it would silently
    /// forget its contents.
    /// </summary>
    public static T? Load<T>(string path, JsonTypeInfo<T> type, Func<T, string?> check)
        where T : class
    {
        byte[]? bytes = DurableFile.Read(path);
        if (bytes is null)
        {
            return null;
        }

        T? value;
        try
        {
            value = JsonSerializer.Deserialize(bytes, type);
        }
        catch (JsonException e)
        {
            throw Corrupt(path, e.Message.Split('\n')[0]);
        }

        if (value is null)
        {
            throw Corrupt(path, "it holds null");
        }

        if (check(value) is { } problem)
        {
            throw Corrupt(path, problem);
        }

        return value;
    }

    /// <summary>Writes <paramref name="value"/> to <paramref name="path"/> durably.</summary>
    public static void Save<T>(string path, T value, JsonTypeInfo<T> type) =>
        DurableFile.Write(path, JsonSerializer.SerializeToUtf8Bytes(value, type));

    private static InvalidOperationException Corrupt(string path, string why) =>
        new($"state file {path} is corrupt ({why}); refusing to start without it (repair it, or move it away to start with none of its contents)");
}
