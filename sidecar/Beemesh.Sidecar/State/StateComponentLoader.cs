using Beemesh.Authorization;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Beemesh.Sidecar.State;

/// <summary>
/// One Dapr <c>Component</c> of type <c>state.beemesh</c>: a store, its consistency, and who may use it.
/// </summary>
/// <param name="Name">metadata.name: the store name apps pass as <c>storeName</c>.</param>
/// <param name="Consistency">"eventual" (the default) or "strong", from the <c>consistency</c> metadata item.</param>
/// <param name="Scopes">The app ids allowed to use it; empty: every app.</param>
/// <param name="Namespace">metadata.namespace, when given: only workloads of that namespace use it.</param>
/// <param name="Origin">FILE:LINE:COLUMN of the document, for messages.</param>
public sealed record StateComponent(string Name, string Consistency, IReadOnlyList<string> Scopes, string? Namespace, string Origin)
{
    /// <summary>The store this component declares.</summary>
    public StateStoreSpec Spec => new(Name, Consistency);
}

/// <summary>A Dapr component file refused: <see cref="Exception.Message"/> is one line naming the file and place.</summary>
public sealed class StateComponentException(string message) : Exception(message);

/// <summary>
/// Reads Dapr <c>Component</c> YAML (the files of <c>dapr run --resources-path</c>): one or more
/// documents separated by <c>---</c>, each <c>apiVersion: dapr.io/v1alpha1</c>, <c>kind: Component</c>,
/// <c>metadata.name</c> (the store name), <c>spec.type: state.beemesh</c>, <c>spec.version: v1</c>,
/// <c>spec.metadata</c> items (<c>consistency: strong|eventual</c>) and optional <c>scopes</c>.
/// </summary>
/// <remarks>
/// All or nothing: the first error refuses the whole file with one line (<c>FILE:LINE:COL: why</c>).
/// Refused: YAML syntax errors, other kinds and component types (only <c>state.beemesh</c> is
/// served), unknown fields and metadata items, secret references, an unknown consistency, a bad
/// store name, YAML aliases, nesting deeper than 32 levels, and files over 1 MiB. Uses YamlDotNet's
/// parser and representation model only (no reflection), so it is trim- and AOT-safe.
/// </remarks>
public static class StateComponentLoader
{
    /// <summary>The component type this implementation serves.</summary>
    public const string ComponentType = "state.beemesh";

    /// <summary>Largest component file read.</summary>
    public const int MaxFileBytes = 1 << 20;

    private const int MaxDepth = 32;

    /// <summary>The components in <paramref name="yaml"/>, read from <paramref name="origin"/> (a file name, for messages).</summary>
    /// <exception cref="StateComponentException">The text is not a valid <c>state.beemesh</c> component file.</exception>
    public static IReadOnlyList<StateComponent> Parse(string yaml, string origin)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        ArgumentNullException.ThrowIfNull(origin);
        CheckStructure(yaml, origin);
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw SyntaxError(origin, e);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException)
        {
            throw new StateComponentException($"{origin}: YAML syntax error: {e.Message}");
        }

        var components = new List<StateComponent>();
        foreach (YamlDocument document in stream.Documents)
        {
            if (IsNull(document.RootNode))
            {
                continue;
            }

            components.Add(ReadComponent(document.RootNode, origin));
        }

        return components;
    }

    /// <summary>
    /// The component files of <paramref name="path"/>: the file itself, or a directory's <c>*.yaml</c>
    /// and <c>*.yml</c> files (not its sub-directories), in name order, as Dapr reads them.
    /// </summary>
    /// <exception cref="StateComponentException">The path does not exist, or names a directory without component files.</exception>
    public static IReadOnlyList<string> Files(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (File.Exists(path))
        {
            return [path];
        }

        if (!Directory.Exists(path))
        {
            throw new StateComponentException($"{path}: no such file or directory");
        }

        List<string> files;
        try
        {
            files = [.. Directory.EnumerateFiles(path)
                .Where(static f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal))
                .Order(StringComparer.Ordinal)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StateComponentException($"{path}: cannot list the directory: {e.Message}");
        }

        return files.Count == 0 ? throw new StateComponentException($"{path}: the directory has no .yaml or .yml files") : files;
    }

    /// <summary>Reads and parses one component file (at most <see cref="MaxFileBytes"/>).</summary>
    /// <exception cref="StateComponentException">The file cannot be read or is refused.</exception>
    public static IReadOnlyList<StateComponent> Load(string file)
    {
        ArgumentNullException.ThrowIfNull(file);
        string text;
        try
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read);
            if (stream.Length > MaxFileBytes)
            {
                throw new StateComponentException($"{file}: {stream.Length} bytes: a component file may have at most {MaxFileBytes} bytes");
            }

            using var reader = new StreamReader(stream, new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true));
            text = reader.ReadToEnd();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StateComponentException($"{file}: cannot read: {e.Message}");
        }
        catch (System.Text.DecoderFallbackException)
        {
            throw new StateComponentException($"{file}: not UTF-8 text");
        }

        return Parse(text, file);
    }

    private static StateComponent ReadComponent(YamlNode root, string origin)
    {
        YamlMappingNode document = Mapping(root, origin, "the document");
        string where = At(origin, root.Start);
        CheckKeys(document, origin, "", ["apiVersion", "kind", "metadata", "spec", "scopes"]);
        string apiVersion = RequiredScalar(document, "apiVersion", origin, "");
        if (apiVersion != "dapr.io/v1alpha1")
        {
            throw Error(origin, document, "apiVersion", $"apiVersion '{apiVersion}': expected dapr.io/v1alpha1");
        }

        string kind = RequiredScalar(document, "kind", origin, "");
        if (kind != "Component")
        {
            throw Error(origin, document, "kind", $"kind '{kind}' is not served: only a Component of type {ComponentType}");
        }

        YamlMappingNode metadata = Mapping(Child(document, "metadata", origin, "") ?? throw new StateComponentException($"{where}: metadata is missing"), origin, "metadata");
        CheckKeys(metadata, origin, "metadata.", ["name", "namespace", "labels", "annotations"]);
        string name = RequiredScalar(metadata, "name", origin, "metadata.");
        if (StateStoreSpec.TryParse(name, out _) is null || name.Contains('='))
        {
            throw Error(origin, metadata, "name", $"metadata.name '{name}': a store name is 1-63 letters, digits, '-', '_' or '.'");
        }

        string? ns = Child(metadata, "namespace", origin, "metadata.") is { } nsNode ? Scalar(nsNode, origin, "metadata.namespace") : null;
        YamlMappingNode spec = Mapping(Child(document, "spec", origin, "") ?? throw new StateComponentException($"{where}: component {name}: spec is missing"), origin, "spec");
        CheckKeys(spec, origin, "spec.", ["type", "version", "metadata", "initTimeout", "ignoreErrors"]);
        string type = RequiredScalar(spec, "type", origin, "spec.");
        if (type != ComponentType)
        {
            throw Error(origin, spec, "type", $"component {name}: type '{type}' is not served: Beemesh serves only {ComponentType}");
        }

        if (Child(spec, "version", origin, "spec.") is { } versionNode && Scalar(versionNode, origin, "spec.version") is var version && version != "v1")
        {
            throw Error(origin, spec, "version", $"component {name}: version '{version}': expected v1");
        }

        string consistency = "eventual";
        if (Child(spec, "metadata", origin, "spec.") is { } itemsNode && !IsNull(itemsNode))
        {
            if (itemsNode is not YamlSequenceNode items)
            {
                throw new StateComponentException($"{At(origin, itemsNode.Start)}: spec.metadata must be a list of {{name, value}} items");
            }

            bool seen = false;
            foreach (YamlNode itemNode in items)
            {
                YamlMappingNode item = Mapping(itemNode, origin, "a spec.metadata item");
                CheckKeys(item, origin, "spec.metadata[].", ["name", "value", "secretKeyRef", "envRef"]);
                string itemName = RequiredScalar(item, "name", origin, "spec.metadata[].");
                if (Child(item, "secretKeyRef", origin, "") is not null || Child(item, "envRef", origin, "") is not null)
                {
                    throw Error(origin, item, "name", $"component {name}: metadata item {itemName}: secret and environment references are not supported; give its value");
                }

                if (itemName != "consistency")
                {
                    throw Error(origin, item, "name", $"component {name}: unknown metadata item '{itemName}' ({ComponentType} takes only consistency)");
                }

                if (seen)
                {
                    throw Error(origin, item, "name", $"component {name}: metadata item consistency is given twice");
                }

                seen = true;
                consistency = RequiredScalar(item, "value", origin, "spec.metadata[].");
                if (consistency is not ("strong" or "eventual"))
                {
                    throw Error(origin, item, "value", $"component {name}: unknown consistency '{consistency}' (expected strong or eventual)");
                }
            }
        }

        var scopes = new List<string>();
        if (Child(document, "scopes", origin, "") is { } scopesNode && !IsNull(scopesNode))
        {
            if (scopesNode is not YamlSequenceNode list)
            {
                throw new StateComponentException($"{At(origin, scopesNode.Start)}: component {name}: scopes must be a list of app ids");
            }

            foreach (YamlNode scope in list)
            {
                string app = Scalar(scope, origin, "scopes[]");
                if (app.Length == 0)
                {
                    throw new StateComponentException($"{At(origin, scope.Start)}: component {name}: an empty app id in scopes");
                }

                scopes.Add(app);
            }
        }

        return new StateComponent(name, consistency, scopes, ns, where);
    }

    /// <summary>Syntax errors, aliases and excessive nesting, found before the representation model is built (<see cref="YamlPrecheck"/>).</summary>
    private static void CheckStructure(string yaml, string origin)
    {
        if (YamlPrecheck.Check(yaml, MaxDepth) is { } bad)
        {
            throw new StateComponentException($"{At(origin, bad.At)}: {bad.Message}");
        }
    }

    private static StateComponentException SyntaxError(string origin, YamlException e) =>
        new($"{At(origin, e.Start)}: {YamlPrecheck.SyntaxError(e)}");

    private static string At(string origin, Mark mark) => mark.Line > 0 ? $"{origin}:{mark.Line}:{mark.Column}" : origin;

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" or "Null" or "NULL" };

    private static YamlMappingNode Mapping(YamlNode node, string origin, string what) =>
        node as YamlMappingNode ?? throw new StateComponentException($"{At(origin, node.Start)}: {what} must be a mapping");

    private static YamlNode? Child(YamlMappingNode mapping, string key, string origin, string path)
    {
        foreach (var (k, v) in mapping.Children)
        {
            if (k is YamlScalarNode { Value: { } name } && name == key)
            {
                return v;
            }
        }

        return null;
    }

    private static void CheckKeys(YamlMappingNode mapping, string origin, string path, string[] allowed)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (YamlNode key in mapping.Children.Keys)
        {
            string name = key is YamlScalarNode { Value: { } text } ? text : throw new StateComponentException($"{At(origin, key.Start)}: {path}: a key must be a plain name");
            if (!allowed.Contains(name, StringComparer.Ordinal))
            {
                throw new StateComponentException($"{At(origin, key.Start)}: unknown field {path}{OneLine(name)}");
            }

            if (!seen.Add(name))
            {
                throw new StateComponentException($"{At(origin, key.Start)}: {path}{name} is given twice");
            }
        }
    }

    private static string Scalar(YamlNode node, string origin, string path) =>
        node is YamlScalarNode scalar && !IsNull(node)
            ? scalar.Value ?? string.Empty
            : throw new StateComponentException($"{At(origin, node.Start)}: {path} must be a string");

    private static string RequiredScalar(YamlMappingNode mapping, string key, string origin, string path)
    {
        YamlNode node = Child(mapping, key, origin, path) ?? throw new StateComponentException($"{At(origin, mapping.Start)}: {path}{key} is missing");
        string value = Scalar(node, origin, path + key);
        return value.Length == 0 ? throw new StateComponentException($"{At(origin, node.Start)}: {path}{key} is empty") : value;
    }

    private static StateComponentException Error(string origin, YamlMappingNode mapping, string key, string message) =>
        new($"{At(origin, (Child(mapping, key, origin, string.Empty) ?? mapping).Start)}: {OneLine(message)}");
}
