using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Beemesh.Inject;

/// <summary>
/// Converts between YAML nodes and JSON nodes, so the Kubernetes models are read and written
/// through their source-generated System.Text.Json context (no reflection under NativeAOT).
/// Plain scalars are typed by the YAML 1.2 core schema, as Kubernetes reads them; quoted and
/// <c>!!str</c>-tagged scalars are strings.
/// </summary>
internal static partial class YamlJson
{
    private const string StringTag = "tag:yaml.org,2002:str";

    /// <summary>The JSON form of a YAML node (aliases are resolved by the YAML loader).</summary>
    public static JsonNode? ToJson(YamlNode node)
    {
        switch (node)
        {
            case YamlMappingNode map:
                var obj = new JsonObject();
                foreach (var (key, value) in map.Children)
                {
                    string name = key is YamlScalarNode s ? s.Value ?? string.Empty
                        : throw new ManifestException(key.Start, "mapping keys must be scalars");
                    obj[name] = ToJson(value);
                }

                return obj;
            case YamlSequenceNode seq:
                var array = new JsonArray();
                foreach (YamlNode item in seq.Children)
                {
                    array.Add(ToJson(item));
                }

                return array;
            case YamlScalarNode scalar:
                return ScalarToJson(scalar);
            default:
                throw new ManifestException(node.Start, $"unsupported YAML node {node.NodeType}");
        }
    }

    /// <summary>
    /// The YAML form of a JSON node. JSON nulls are left out (as Kubernetes omits unset fields);
    /// strings that a YAML reader would take for another type are double-quoted.
    /// </summary>
    public static YamlNode ToYaml(JsonNode node)
    {
        switch (node)
        {
            case JsonObject obj:
                var map = new YamlMappingNode();
                foreach (var (name, value) in obj)
                {
                    if (value is not null)
                    {
                        map.Add(new YamlScalarNode(name), ToYaml(value));
                    }
                }

                return map;
            case JsonArray array:
                var seq = new YamlSequenceNode();
                foreach (JsonNode? item in array)
                {
                    if (item is not null)
                    {
                        seq.Add(ToYaml(item));
                    }
                }

                return seq;
            default:
                var v = node.AsValue();
                if (v.TryGetValue(out string? text))
                {
                    return StringScalar(text);
                }

                if (v.TryGetValue(out bool flag))
                {
                    return new YamlScalarNode(flag ? "true" : "false");
                }

                // Numbers keep the text System.Text.Json wrote for them.
                return new YamlScalarNode(node.ToJsonString());
        }
    }

    /// <summary>A scalar holding <paramref name="text"/> as a string, quoted when plain text would read as another type.</summary>
    public static YamlScalarNode StringScalar(string text)
    {
        var scalar = new YamlScalarNode(text);
        if (PlainType(text) is not null)
        {
            scalar.Style = ScalarStyle.DoubleQuoted;
        }

        return scalar;
    }

    /// <summary>The string value of a scalar node, or null when the node is absent or not a string.</summary>
    public static string? StringValue(YamlNode? node) =>
        node is YamlScalarNode s && ScalarToJson(s) is JsonValue v && v.TryGetValue(out string? text) ? text : null;

    private static JsonNode? ScalarToJson(YamlScalarNode scalar)
    {
        string text = scalar.Value ?? string.Empty;
        if (scalar.Style is not (ScalarStyle.Plain or ScalarStyle.Any) || (!scalar.Tag.IsEmpty && !scalar.Tag.IsNonSpecific && scalar.Tag.Value == StringTag))
        {
            return JsonValue.Create(text);
        }

        return PlainType(text) switch
        {
            PlainKind.Null => null,
            PlainKind.True => JsonValue.Create(true),
            PlainKind.False => JsonValue.Create(false),
            PlainKind.Integer => IntegerValue(text),
            PlainKind.Float => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? JsonValue.Create(d) : JsonValue.Create(text),
            _ => JsonValue.Create(text),
        };
    }

    private static JsonValue IntegerValue(string text)
    {
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n))
        {
            return JsonValue.Create(n);
        }

        if (text.StartsWith("0x", StringComparison.Ordinal) && long.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out n))
        {
            return JsonValue.Create(n);
        }

        if (text.StartsWith("0o", StringComparison.Ordinal))
        {
            try
            {
                return JsonValue.Create(Convert.ToInt64(text[2..], 8));
            }
            catch (Exception e) when (e is FormatException or OverflowException)
            {
            }
        }

        return JsonValue.Create(text);
    }

    private enum PlainKind
    {
        Null,
        True,
        False,
        Integer,
        Float,

        /// <summary>A string under YAML 1.2, a boolean under YAML 1.1.</summary>
        Yaml11Boolean,
    }

    // YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
    private static PlainKind? PlainType(string text) => text switch
    {
        "" or "~" or "null" or "Null" or "NULL" => PlainKind.Null,
        "true" or "True" or "TRUE" => PlainKind.True,
        "false" or "False" or "FALSE" => PlainKind.False,
        _ when IntegerPattern().IsMatch(text) => PlainKind.Integer,
        _ when FloatPattern().IsMatch(text) => PlainKind.Float,
        // Older YAML 1.1 readers (go-yaml v2 among them) take these for booleans: quote them too.
        "yes" or "Yes" or "YES" or "no" or "No" or "NO" or "on" or "On" or "ON" or "off" or "Off" or "OFF" or "y" or "Y" or "n" or "N" => PlainKind.Yaml11Boolean,
        _ => null,
    };

    [GeneratedRegex("^([-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")]
    private static partial Regex IntegerPattern();

    [GeneratedRegex(@"^([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$")]
    private static partial Regex FloatPattern();
}
