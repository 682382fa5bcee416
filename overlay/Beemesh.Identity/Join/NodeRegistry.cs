using Beemesh.Identity.Storage;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Beemesh.Identity.Join;

/// <summary>
/// The node names issued by the node holding the root, in <c>STATE/state/nodes.json</c>, so a name
/// is given once. Written durably like the token store. Thread-safe.
/// </summary>
public sealed class NodeRegistry
{
    /// <summary>Path of the registry below the state directory.</summary>
    public static readonly string RelativePath = Path.Combine("state", "nodes.json");

    private const UnixFileMode PrivateFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly string _path;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly RegistryFile _file;

    /// <summary>Loads (or starts) the registry in <paramref name="stateDirectory"/>.</summary>
    public NodeRegistry(string stateDirectory, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(stateDirectory);
        _path = Path.Combine(stateDirectory, RelativePath);
        _time = timeProvider ?? TimeProvider.System;
        _file = File.Exists(_path)
            ? JsonSerializer.Deserialize(File.ReadAllBytes(_path), JoinJsonContext.Default.RegistryFile)
                ?? throw new InvalidOperationException($"{_path} is empty")
            : new RegistryFile();
    }

    /// <summary>True when <paramref name="nodeName"/> was already given out.</summary>
    public bool Contains(string nodeName)
    {
        lock (_gate)
        {
            return _file.Nodes.Exists(n => n.Name == nodeName);
        }
    }

    /// <summary>Records <paramref name="nodeName"/> (durably); false when it was already taken.</summary>
    public bool TryAdd(string nodeName)
    {
        lock (_gate)
        {
            if (_file.Nodes.Exists(n => n.Name == nodeName))
            {
                return false;
            }

            _file.Nodes.Add(new NodeEntry { Name = nodeName, Joined = _time.GetUtcNow() });
            Directory.CreateDirectory(Path.GetDirectoryName(_path)!, PrivateFileMode | UnixFileMode.UserExecute);
            DurableFile.Write(_path, JsonSerializer.SerializeToUtf8Bytes(_file, JoinJsonContext.Default.RegistryFile), PrivateFileMode);
            return true;
        }
    }

    /// <summary>The stored file (version 1).</summary>
    internal sealed class RegistryFile
    {
        [JsonPropertyName("version")]
        public int Version { get; set; } = 1;

        [JsonPropertyName("nodes")]
        public List<NodeEntry> Nodes { get; set; } = [];
    }

    /// <summary>One node name as stored.</summary>
    internal sealed class NodeEntry
    {
        [JsonPropertyName("name")]
        public string Name { get; set; } = "";

        [JsonPropertyName("joined")]
        public DateTimeOffset Joined { get; set; }
    }
}
