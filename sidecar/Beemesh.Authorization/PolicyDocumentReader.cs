using System.Net;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Beemesh.Authorization;

/// <summary>
/// Turns one YAML document (representation model, which keeps every node's position) into an
/// <see cref="AuthorizationPolicy"/>, reporting each problem with its line, column and field path.
/// Keeps reading after an error so one pass reports as many problems as possible.
/// </summary>
internal sealed class PolicyDocumentReader(List<PolicyError> errors)
{
    private static readonly string[] RootFields = ["apiVersion", "kind", "metadata", "spec"];
    private static readonly string[] MetadataFields = ["name", "namespace", "labels", "annotations"];
    private static readonly string[] SpecFields = ["selector", "action", "rules"];
    private static readonly string[] SelectorFields = ["matchLabels"];
    private static readonly string[] RuleFields = ["from", "to", "when"];
    private static readonly string[] FromFields = ["source"];
    private static readonly string[] ToFields = ["operation"];
    private static readonly string[] SourceFields = ["principals", "notPrincipals", "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks"];
    private static readonly string[] OperationFields = ["ports", "notPorts", "methods", "notMethods", "paths", "notPaths", "hosts", "notHosts"];
    private static readonly string[] ConditionFields = ["key", "values", "notValues"];

    /// <summary>Whether a node is YAML null (an empty value, <c>~</c> or <c>null</c>, unquoted).</summary>
    public static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any } scalar
        && scalar.Value is null or "" or "~" or "null" or "Null" or "NULL";

    /// <summary>Reads one document; null when it has errors (already reported).</summary>
    public AuthorizationPolicy? ReadDocument(YamlNode root, out Mark nameMark)
    {
        nameMark = root.Start;
        int errorsBefore = errors.Count;
        if (Expect<YamlMappingNode>(root, string.Empty, "a mapping") is not { } map)
        {
            return null;
        }

        string? apiVersion = null, kind = null;
        YamlNode? metadata = null, spec = null;
        foreach ((YamlScalarNode key, YamlNode value, string path) in Fields(map, string.Empty))
        {
            switch (key.Value)
            {
                case "apiVersion": apiVersion = ReadString(value, path, required: true); break;
                case "kind": kind = ReadString(value, path, required: true); break;
                case "metadata": metadata = value; break;
                case "spec": spec = value; break;
                default: Unknown(key, path, RootFields); break;
            }
        }

        if (!Has(map, "apiVersion"))
        {
            Missing(map, "apiVersion");
        }
        else if (apiVersion is not null and not "security.istio.io/v1" and not "security.istio.io/v1beta1")
        {
            Error(Value(map, "apiVersion"), "apiVersion", $"\"{apiVersion}\" is not supported (expected security.istio.io/v1 or security.istio.io/v1beta1)");
        }

        if (!Has(map, "kind"))
        {
            Missing(map, "kind");
        }
        else if (kind is not null and not "AuthorizationPolicy")
        {
            // Another kind's fields would all be "unknown"; stop here rather than bury the real cause.
            Error(Value(map, "kind"), "kind", $"\"{kind}\" is not supported (only AuthorizationPolicy)");
            return null;
        }

        string? name = null;
        string policyNamespace = "default";
        if (metadata is null)
        {
            Missing(map, "metadata");
        }
        else if (Expect<YamlMappingNode>(metadata, "metadata", "a mapping") is { } meta)
        {
            foreach ((YamlScalarNode key, YamlNode value, string path) in Fields(meta, "metadata"))
            {
                switch (key.Value)
                {
                    case "name":
                        name = ReadString(value, path, required: true);
                        nameMark = value.Start;
                        if (name is not null && KubernetesNames.CheckSubdomain("policy name", name) is { } badName)
                        {
                            Error(value, path, badName);
                        }

                        break;
                    case "namespace":
                        policyNamespace = ReadString(value, path, required: true) ?? policyNamespace;
                        if (KubernetesNames.CheckLabel("namespace", policyNamespace) is { } badNamespace)
                        {
                            Error(value, path, badNamespace);
                        }

                        break;
                    case "labels":
                    case "annotations":
                        // Accepted for kubectl compatibility; they do not affect authorization.
                        ReadStringMap(value, path);
                        break;
                    default:
                        Unknown(key, path, MetadataFields);
                        break;
                }
            }

            if (!Has(meta, "name"))
            {
                Missing(meta, "metadata.name");
            }
        }

        var policySelector = new Dictionary<string, string>(StringComparer.Ordinal);
        PolicyAction action = PolicyAction.Allow;
        var rules = new List<PolicyRule>();
        if (spec is not null && !IsNull(spec) && Expect<YamlMappingNode>(spec, "spec", "a mapping") is { } specMap)
        {
            foreach ((YamlScalarNode key, YamlNode value, string path) in Fields(specMap, "spec"))
            {
                switch (key.Value)
                {
                    case "selector": ReadSelector(value, path, policySelector); break;
                    case "action": action = ReadAction(value, path); break;
                    case "rules": ReadRules(value, path, rules); break;
                    case "provider":
                        Error(key, path, "not supported (it belongs to the CUSTOM action, which Beemesh does not implement)");
                        break;
                    case "targetRef":
                    case "targetRefs":
                        Error(key, path, "not supported (select workloads with selector.matchLabels)");
                        break;
                    default: Unknown(key, path, SpecFields); break;
                }
            }
        }

        if (errors.Count != errorsBefore || name is null)
        {
            return null;
        }

        return new AuthorizationPolicy
        {
            Name = name,
            Namespace = policyNamespace,
            Selector = policySelector,
            Action = action,
            Rules = rules,
            SourceLine = (int)Math.Min(root.Start.Line, int.MaxValue),
        };
    }

    private void ReadSelector(YamlNode node, string path, Dictionary<string, string> selector)
    {
        if (IsNull(node) || Expect<YamlMappingNode>(node, path, "a mapping") is not { } map)
        {
            return;
        }

        foreach ((YamlScalarNode key, YamlNode value, string childPath) in Fields(map, path))
        {
            if (key.Value == "matchLabels")
            {
                foreach ((string label, string labelValue) in ReadStringMap(value, childPath))
                {
                    selector[label] = labelValue;
                }
            }
            else
            {
                Unknown(key, childPath, SelectorFields);
            }
        }
    }

    private PolicyAction ReadAction(YamlNode node, string path)
    {
        if (Expect<YamlScalarNode>(node, path, "a string") is not { } scalar)
        {
            return PolicyAction.Allow;
        }

        string text = IsNull(scalar) ? string.Empty : scalar.Value ?? string.Empty;
        switch (text)
        {
            case "ALLOW": return PolicyAction.Allow;
            case "DENY": return PolicyAction.Deny;
            case "AUDIT": return PolicyAction.Audit;
            case "CUSTOM":
                Error(node, path, "CUSTOM is not supported (expected ALLOW, DENY or AUDIT)");
                return PolicyAction.Allow;
            case "":
                Error(node, path, "empty action (expected ALLOW, DENY or AUDIT; omit the field for ALLOW)");
                return PolicyAction.Allow;
            default:
                Error(node, path, $"\"{text}\" is not an action (expected ALLOW, DENY or AUDIT)");
                return PolicyAction.Allow;
        }
    }

    private void ReadRules(YamlNode node, string path, List<PolicyRule> rules)
    {
        if (IsNull(node) || Expect<YamlSequenceNode>(node, path, "a list") is not { } list)
        {
            return;
        }

        for (int i = 0; i < list.Children.Count; i++)
        {
            string rulePath = $"{path}[{i}]";
            YamlNode item = list.Children[i];
            if (IsNull(item))
            {
                Error(item, rulePath, "empty rule (write {} for a rule that matches everything)");
                continue;
            }

            if (Expect<YamlMappingNode>(item, rulePath, "a mapping") is not { } map)
            {
                continue;
            }

            var from = new List<PolicySource>();
            var to = new List<PolicyOperation>();
            var when = new List<PolicyCondition>();
            foreach ((YamlScalarNode key, YamlNode value, string childPath) in Fields(map, rulePath))
            {
                switch (key.Value)
                {
                    case "from": ReadEntries(value, childPath, "source", FromFields, from, ReadSource); break;
                    case "to": ReadEntries(value, childPath, "operation", ToFields, to, ReadOperation); break;
                    case "when": ReadConditions(value, childPath, when); break;
                    default: Unknown(key, childPath, RuleFields); break;
                }
            }

            rules.Add(new PolicyRule { From = from, To = to, When = when });
        }
    }

    /// <summary>
    /// Reads <c>from</c> or <c>to</c>: a non-empty list of single-key mappings (<c>source</c> or
    /// <c>operation</c>). Istio refuses an empty list or entry because it would read as "match
    /// anything" while the author surely meant to restrict something.
    /// </summary>
    private void ReadEntries<T>(YamlNode node, string path, string entryKey, string[] entryFields, List<T> into, Func<YamlMappingNode, string, T?> read)
        where T : class
    {
        if (IsNull(node) || Expect<YamlSequenceNode>(node, path, "a list") is not { } list)
        {
            Error(node, path, "must not be empty (omit the field to match any)");
            return;
        }

        if (list.Children.Count == 0)
        {
            Error(node, path, "must not be empty (omit the field to match any)");
            return;
        }

        for (int i = 0; i < list.Children.Count; i++)
        {
            string itemPath = $"{path}[{i}]";
            if (Expect<YamlMappingNode>(list.Children[i], itemPath, "a mapping") is not { } map)
            {
                continue;
            }

            bool seen = false;
            foreach ((YamlScalarNode key, YamlNode value, string childPath) in Fields(map, itemPath))
            {
                if (key.Value != entryKey)
                {
                    Unknown(key, childPath, entryFields);
                    continue;
                }

                seen = true;
                if (IsNull(value))
                {
                    Error(value, childPath, "must not be empty");
                }
                else if (Expect<YamlMappingNode>(value, childPath, "a mapping") is { } entry && read(entry, childPath) is { } result)
                {
                    into.Add(result);
                }
            }

            if (!seen)
            {
                Missing(map, $"{itemPath}.{entryKey}");
            }
        }
    }

    private PolicySource? ReadSource(YamlMappingNode map, string path)
    {
        int errorsBefore = errors.Count;
        List<StringMatch> principals = [], notPrincipals = [], namespaces = [], notNamespaces = [];
        List<IPNetwork> ipBlocks = [], notIpBlocks = [];
        foreach ((YamlScalarNode key, YamlNode value, string childPath) in Fields(map, path))
        {
            switch (key.Value)
            {
                case "principals": ReadMatches(value, childPath, principals); break;
                case "notPrincipals": ReadMatches(value, childPath, notPrincipals); break;
                case "namespaces": ReadMatches(value, childPath, namespaces); break;
                case "notNamespaces": ReadMatches(value, childPath, notNamespaces); break;
                case "ipBlocks": ReadIpBlocks(value, childPath, ipBlocks); break;
                case "notIpBlocks": ReadIpBlocks(value, childPath, notIpBlocks); break;
                case "requestPrincipals":
                case "notRequestPrincipals":
                    Error(key, childPath, "not supported (JWT request authentication is not implemented)");
                    break;
                case "remoteIpBlocks":
                case "notRemoteIpBlocks":
                    Error(key, childPath, "not supported (use ipBlocks: the sidecar sees the peer's own address)");
                    break;
                default: Unknown(key, childPath, SourceFields); break;
            }
        }

        if (errors.Count != errorsBefore)
        {
            return null;
        }

        if (principals.Count + notPrincipals.Count + namespaces.Count + notNamespaces.Count + ipBlocks.Count + notIpBlocks.Count == 0)
        {
            Error(map, path, "must set at least one field (omit `from` to match any source)");
            return null;
        }

        return new PolicySource
        {
            Principals = principals,
            NotPrincipals = notPrincipals,
            Namespaces = namespaces,
            NotNamespaces = notNamespaces,
            IpBlocks = ipBlocks,
            NotIpBlocks = notIpBlocks,
        };
    }

    private PolicyOperation? ReadOperation(YamlMappingNode map, string path)
    {
        int errorsBefore = errors.Count;
        List<int> ports = [], notPorts = [];
        List<StringMatch> methods = [], notMethods = [], paths = [], notPaths = [], hosts = [], notHosts = [];
        foreach ((YamlScalarNode key, YamlNode value, string childPath) in Fields(map, path))
        {
            switch (key.Value)
            {
                case "ports": ReadPorts(value, childPath, ports); break;
                case "notPorts": ReadPorts(value, childPath, notPorts); break;
                case "methods": ReadMatches(value, childPath, methods); break;
                case "notMethods": ReadMatches(value, childPath, notMethods); break;
                case "paths": ReadMatches(value, childPath, paths, isPath: true); break;
                case "notPaths": ReadMatches(value, childPath, notPaths, isPath: true); break;
                case "hosts": ReadMatches(value, childPath, hosts); break;
                case "notHosts": ReadMatches(value, childPath, notHosts); break;
                default: Unknown(key, childPath, OperationFields); break;
            }
        }

        if (errors.Count != errorsBefore)
        {
            return null;
        }

        if (ports.Count + notPorts.Count + methods.Count + notMethods.Count + paths.Count + notPaths.Count + hosts.Count + notHosts.Count == 0)
        {
            Error(map, path, "must set at least one field (omit `to` to match any operation)");
            return null;
        }

        return new PolicyOperation
        {
            Ports = ports,
            NotPorts = notPorts,
            Methods = methods,
            NotMethods = notMethods,
            Paths = paths,
            NotPaths = notPaths,
            Hosts = hosts,
            NotHosts = notHosts,
        };
    }

    private void ReadConditions(YamlNode node, string path, List<PolicyCondition> into)
    {
        if (IsNull(node) || Expect<YamlSequenceNode>(node, path, "a list") is not { } list || list.Children.Count == 0)
        {
            Error(node, path, "must not be empty (omit the field for no conditions)");
            return;
        }

        for (int i = 0; i < list.Children.Count; i++)
        {
            string itemPath = $"{path}[{i}]";
            if (Expect<YamlMappingNode>(list.Children[i], itemPath, "a mapping") is not { } map)
            {
                continue;
            }

            string? key = null;
            YamlNode? keyNode = null, valuesNode = null, notValuesNode = null;
            string valuesPath = itemPath + ".values", notValuesPath = itemPath + ".notValues";
            foreach ((YamlScalarNode field, YamlNode value, string childPath) in Fields(map, itemPath))
            {
                switch (field.Value)
                {
                    case "key":
                        keyNode = value;
                        key = ReadString(value, childPath, required: true);
                        break;
                    case "values": valuesNode = value; break;
                    case "notValues": notValuesNode = value; break;
                    default: Unknown(field, childPath, ConditionFields); break;
                }
            }

            if (keyNode is null)
            {
                Missing(map, itemPath + ".key");
                continue;
            }

            if (key is null)
            {
                continue;
            }

            if (!PolicyCondition.TryParseKey(key, out ConditionAttribute attribute, out string? headerName, out string? keyError))
            {
                Error(keyNode, itemPath + ".key", keyError!);
                continue;
            }

            List<(string Text, YamlNode Node)> values = valuesNode is null ? [] : ReadScalarList(valuesNode, valuesPath);
            List<(string Text, YamlNode Node)> notValues = notValuesNode is null ? [] : ReadScalarList(notValuesNode, notValuesPath);
            if (values.Count == 0 && notValues.Count == 0)
            {
                Error(map, itemPath, $"at least one of values or notValues must be set for key \"{key}\"");
                continue;
            }

            var compiled = new PolicyCondition.ConditionValue[values.Count];
            var compiledNot = new PolicyCondition.ConditionValue[notValues.Count];
            bool ok = CompileValues(attribute, values, valuesPath, compiled) & CompileValues(attribute, notValues, notValuesPath, compiledNot);
            if (ok)
            {
                into.Add(PolicyCondition.FromCompiled(
                    key,
                    attribute,
                    headerName,
                    values.ConvertAll(v => v.Text).ToArray(),
                    notValues.ConvertAll(v => v.Text).ToArray(),
                    compiled,
                    compiledNot));
            }
        }
    }

    private bool CompileValues(ConditionAttribute attribute, List<(string Text, YamlNode Node)> values, string path, PolicyCondition.ConditionValue[] into)
    {
        bool ok = true;
        for (int i = 0; i < values.Count; i++)
        {
            if (!PolicyCondition.TryCompileValue(attribute, values[i].Text, out into[i], out string? error))
            {
                Error(values[i].Node, $"{path}[{i}]", error!);
                ok = false;
            }
        }

        return ok;
    }

    private void ReadMatches(YamlNode node, string path, List<StringMatch> into, bool isPath = false)
    {
        List<(string Text, YamlNode Node)> items = ReadScalarList(node, path);
        for (int i = 0; i < items.Count; i++)
        {
            (string text, YamlNode itemNode) = items[i];
            if (isPath && text.Contains('{', StringComparison.Ordinal))
            {
                Error(itemNode, $"{path}[{i}]", $"\"{text}\": path templates ({{*}}, {{**}}) are not supported");
            }
            else if (StringMatch.TryParse(text, out StringMatch match, out string? error))
            {
                into.Add(match);
            }
            else
            {
                Error(itemNode, $"{path}[{i}]", error!);
            }
        }
    }

    private void ReadPorts(YamlNode node, string path, List<int> into)
    {
        List<(string Text, YamlNode Node)> items = ReadScalarList(node, path);
        for (int i = 0; i < items.Count; i++)
        {
            if (PortNumber.TryParse(items[i].Text, out int port))
            {
                into.Add(port);
            }
            else
            {
                Error(items[i].Node, $"{path}[{i}]", $"\"{items[i].Text}\" is not a port number");
            }
        }
    }

    private void ReadIpBlocks(YamlNode node, string path, List<IPNetwork> into)
    {
        List<(string Text, YamlNode Node)> items = ReadScalarList(node, path);
        for (int i = 0; i < items.Count; i++)
        {
            if (IpBlock.TryParse(items[i].Text, out IPNetwork network, out string? error))
            {
                into.Add(network);
            }
            else
            {
                Error(items[i].Node, $"{path}[{i}]", error!);
            }
        }
    }

    /// <summary>
    /// Reads a list of scalars. A null list is "not set"; a null or non-scalar item is an error.
    /// Plain numbers are taken as their text, so <c>ports: [8080]</c> and <c>ports: ["8080"]</c> agree.
    /// </summary>
    private List<(string Text, YamlNode Node)> ReadScalarList(YamlNode node, string path)
    {
        var result = new List<(string, YamlNode)>();
        if (IsNull(node) || Expect<YamlSequenceNode>(node, path, "a list") is not { } list)
        {
            return result;
        }

        for (int i = 0; i < list.Children.Count; i++)
        {
            YamlNode item = list.Children[i];
            string itemPath = $"{path}[{i}]";
            if (Expect<YamlScalarNode>(item, itemPath, "a string") is not { } scalar)
            {
                continue;
            }

            if (IsNull(scalar))
            {
                Error(item, itemPath, "empty value (use \"*\" to require a non-empty value)");
                continue;
            }

            result.Add((scalar.Value ?? string.Empty, item));
        }

        return result;
    }

    private List<(string Key, string Value)> ReadStringMap(YamlNode node, string path)
    {
        var result = new List<(string, string)>();
        if (IsNull(node) || Expect<YamlMappingNode>(node, path, "a mapping") is not { } map)
        {
            return result;
        }

        foreach ((YamlScalarNode key, YamlNode value, string childPath) in Fields(map, path))
        {
            if (key.Value is null or "")
            {
                Error(key, childPath, "empty key");
            }
            else if (ReadString(value, childPath, required: false) is { } text)
            {
                result.Add((key.Value, text));
            }
            else if (IsNull(value))
            {
                result.Add((key.Value, string.Empty));
            }
        }

        return result;
    }

    private string? ReadString(YamlNode node, string path, bool required)
    {
        if (Expect<YamlScalarNode>(node, path, "a string") is not { } scalar)
        {
            return null;
        }

        string? text = IsNull(scalar) ? null : scalar.Value;
        if (string.IsNullOrEmpty(text))
        {
            if (required)
            {
                Error(node, path, "must not be empty");
            }

            return null;
        }

        return text;
    }

    /// <summary>The entries of a mapping whose keys are strings; other keys are reported.</summary>
    private IEnumerable<(YamlScalarNode Key, YamlNode Value, string Path)> Fields(YamlMappingNode map, string path)
    {
        foreach (KeyValuePair<YamlNode, YamlNode> entry in map.Children)
        {
            if (entry.Key is not YamlScalarNode key || key.Value is null)
            {
                Error(entry.Key, path, "mapping keys must be strings");
                continue;
            }

            yield return (key, entry.Value, path.Length == 0 ? key.Value : $"{path}.{key.Value}");
        }
    }

    private T? Expect<T>(YamlNode node, string path, string what)
        where T : YamlNode
    {
        if (node is T typed)
        {
            return typed;
        }

        Error(node, path, $"expected {what}, found {Describe(node)}");
        return null;
    }

    private static string Describe(YamlNode node) => node switch
    {
        YamlMappingNode => "a mapping",
        YamlSequenceNode => "a list",
        _ when IsNull(node) => "null",
        YamlScalarNode scalar => $"the value \"{scalar.Value}\"",
        _ => "another kind of node",
    };

    private static bool Has(YamlMappingNode map, string key) => map.Children.ContainsKey(new YamlScalarNode(key));

    private static YamlNode Value(YamlMappingNode map, string key) => map.Children[new YamlScalarNode(key)];

    private void Unknown(YamlScalarNode key, string path, string[] known) =>
        Error(key, path, $"unknown field (expected one of: {string.Join(", ", known)})");

    private void Missing(YamlMappingNode map, string path) => Error(map, path, "missing required field");

    private void Error(YamlNode node, string path, string message) =>
        errors.Add(PolicyError.At(node.Start, path, message));
}
