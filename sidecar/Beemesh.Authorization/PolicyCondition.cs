using System.Net;

namespace Beemesh.Authorization;

/// <summary>
/// Istio <c>rules[].when[]</c>: a condition on one request attribute. It matches when the attribute
/// matches any of <see cref="Values"/> (if given) and none of <see cref="NotValues"/>.
/// Values are compiled once at creation, so evaluation allocates nothing.
/// </summary>
public sealed class PolicyCondition
{
    /// <summary>The keys this implementation understands, for error messages.</summary>
    internal const string SupportedKeys =
        "source.ip, source.namespace, source.principal, destination.port, request.headers[<name>]";

    private readonly ConditionValue[] _values;
    private readonly ConditionValue[] _notValues;

    private PolicyCondition(string key, ConditionAttribute attribute, string? headerName, string[] values, string[] notValues, ConditionValue[] compiledValues, ConditionValue[] compiledNotValues)
    {
        Key = key;
        Attribute = attribute;
        HeaderName = headerName;
        Values = values;
        NotValues = notValues;
        _values = compiledValues;
        _notValues = compiledNotValues;
    }

    /// <summary>The key as written, e.g. <c>request.headers[x-user]</c>.</summary>
    public string Key { get; }

    /// <summary>The attribute the key names.</summary>
    public ConditionAttribute Attribute { get; }

    /// <summary>For <see cref="ConditionAttribute.RequestHeader"/>: the header name in lower case.</summary>
    public string? HeaderName { get; }

    /// <summary>Values as written; empty means "not set".</summary>
    public IReadOnlyList<string> Values { get; }

    /// <summary>Excluded values as written; empty means "not set".</summary>
    public IReadOnlyList<string> NotValues { get; }

    /// <summary>Whether the condition reads an HTTP-only attribute (request headers).</summary>
    public bool IsHttpOnly => Attribute == ConditionAttribute.RequestHeader;

    /// <summary>
    /// Builds a condition from code. Throws <see cref="ArgumentException"/> with the loader's message
    /// when the key or a value is refused; the loader itself reports such errors with line numbers.
    /// </summary>
    /// <param name="key">The Istio condition key.</param>
    /// <param name="values">Values, any of which must match.</param>
    /// <param name="notValues">Values none of which may match.</param>
    public static PolicyCondition Create(string key, IEnumerable<string>? values, IEnumerable<string>? notValues = null)
    {
        if (!TryParseKey(key, out ConditionAttribute attribute, out string? headerName, out string? error))
        {
            throw new ArgumentException(error, nameof(key));
        }

        string[] v = values?.ToArray() ?? [];
        string[] nv = notValues?.ToArray() ?? [];
        if (v.Length == 0 && nv.Length == 0)
        {
            throw new ArgumentException("at least one of values or notValues must be set", nameof(values));
        }

        var compiled = new ConditionValue[v.Length];
        for (int i = 0; i < v.Length; i++)
        {
            if (!TryCompileValue(attribute, v[i], out compiled[i], out error))
            {
                throw new ArgumentException(error, nameof(values));
            }
        }

        var compiledNot = new ConditionValue[nv.Length];
        for (int i = 0; i < nv.Length; i++)
        {
            if (!TryCompileValue(attribute, nv[i], out compiledNot[i], out error))
            {
                throw new ArgumentException(error, nameof(notValues));
            }
        }

        return new PolicyCondition(key, attribute, headerName, v, nv, compiled, compiledNot);
    }

    /// <summary>Used by the loader after it has compiled and checked every value itself.</summary>
    internal static PolicyCondition FromCompiled(string key, ConditionAttribute attribute, string? headerName, string[] values, string[] notValues, ConditionValue[] compiledValues, ConditionValue[] compiledNotValues) =>
        new(key, attribute, headerName, values, notValues, compiledValues, compiledNotValues);

    /// <summary>Recognizes a supported key; refuses every other key with a message naming it.</summary>
    internal static bool TryParseKey(string key, out ConditionAttribute attribute, out string? headerName, out string? error)
    {
        headerName = null;
        error = null;
        switch (key)
        {
            case "source.ip":
                attribute = ConditionAttribute.SourceIp;
                return true;
            case "source.namespace":
                attribute = ConditionAttribute.SourceNamespace;
                return true;
            case "source.principal":
                attribute = ConditionAttribute.SourcePrincipal;
                return true;
            case "destination.port":
                attribute = ConditionAttribute.DestinationPort;
                return true;
        }

        attribute = ConditionAttribute.RequestHeader;
        const string HeaderPrefix = "request.headers[";
        if (key.StartsWith(HeaderPrefix, StringComparison.Ordinal) && key.EndsWith(']'))
        {
            string name = key[HeaderPrefix.Length..^1];
            if (name.Length == 0 || name.Contains('[', StringComparison.Ordinal) || name.Contains(']', StringComparison.Ordinal))
            {
                error = $"\"{key}\" does not name a header";
                return false;
            }

            headerName = name.ToLowerInvariant();
            return true;
        }

        error = key.Length == 0
            ? "empty condition key"
            : $"condition key \"{key}\" is not supported (supported: {SupportedKeys})";
        return false;
    }

    /// <summary>Compiles one value for <paramref name="attribute"/>.</summary>
    internal static bool TryCompileValue(ConditionAttribute attribute, string text, out ConditionValue value, out string? error)
    {
        value = default;
        switch (attribute)
        {
            case ConditionAttribute.SourceIp:
                if (!IpBlock.TryParse(text, out IPNetwork network, out error))
                {
                    return false;
                }

                value = new ConditionValue(default, 0, network);
                return true;
            case ConditionAttribute.DestinationPort:
                if (!PortNumber.TryParse(text, out int port))
                {
                    error = $"\"{text}\" is not a port number";
                    return false;
                }

                value = new ConditionValue(default, port, default);
                error = null;
                return true;
            default:
                if (!StringMatch.TryParse(text, out StringMatch match, out error))
                {
                    return false;
                }

                value = new ConditionValue(match, 0, default);
                return true;
        }
    }

    /// <summary>
    /// Evaluates the condition against the request. The caller handles HTTP-only conditions on plain
    /// TCP before calling (see <see cref="PolicyEvaluator"/>); here a missing header is simply absent.
    /// </summary>
    internal bool Matches(AuthorizationRequest request)
    {
        if (_values.Length != 0 && !AnyMatches(_values, request))
        {
            return false;
        }

        return _notValues.Length == 0 || !AnyMatches(_notValues, request);
    }

    private bool AnyMatches(ConditionValue[] values, AuthorizationRequest request)
    {
        string? text = null;
        switch (Attribute)
        {
            case ConditionAttribute.SourceIp:
                foreach (ConditionValue v in values)
                {
                    if (IpBlock.Contains(v.Network, request.SourceAddress))
                    {
                        return true;
                    }
                }

                return false;
            case ConditionAttribute.DestinationPort:
                foreach (ConditionValue v in values)
                {
                    if (v.Port == request.DestinationPort)
                    {
                        return true;
                    }
                }

                return false;
            case ConditionAttribute.SourceNamespace:
                text = request.SourceNamespace;
                break;
            case ConditionAttribute.SourcePrincipal:
                text = request.SourcePrincipal;
                break;
            case ConditionAttribute.RequestHeader:
                request.Http?.Headers.TryGetValue(HeaderName!, out text);
                break;
        }

        foreach (ConditionValue v in values)
        {
            if (v.Match.Matches(text))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>One compiled condition value; which field is meaningful depends on the attribute.</summary>
    internal readonly record struct ConditionValue(StringMatch Match, int Port, IPNetwork Network);
}
