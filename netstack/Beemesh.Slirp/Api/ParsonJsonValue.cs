namespace Beemesh.Slirp.Api;

/// <summary>
/// A parsed JSON value with the semantics slirp4netns's API sees through its parson parser:
/// strings are C strings (cut at the first NUL), objects keep member order and never hold
/// duplicate keys, numbers are doubles.
/// </summary>
internal sealed class ParsonJsonValue
{
    private ParsonJsonValue(ParsonJsonKind kind) => Kind = kind;

    public ParsonJsonKind Kind { get; }

    public string? String { get; private init; }

    public double Number { get; private init; }

    public List<KeyValuePair<string, ParsonJsonValue>>? Members { get; private init; }

    public static ParsonJsonValue FromString(string value) => new(ParsonJsonKind.String) { String = value };

    public static ParsonJsonValue FromNumber(double value) => new(ParsonJsonKind.Number) { Number = value };

    public static ParsonJsonValue NewObject() => new(ParsonJsonKind.Object) { Members = [] };

    public static ParsonJsonValue Other(ParsonJsonKind kind) => new(kind);

    /// <summary>json_object_get_value: the member with exactly this name, or null.</summary>
    public ParsonJsonValue? Get(string name)
    {
        if (Members is null)
        {
            return null;
        }

        foreach (KeyValuePair<string, ParsonJsonValue> member in Members)
        {
            if (member.Key == name)
            {
                return member.Value;
            }
        }

        return null;
    }

    /// <summary>json_object_dotget_value: "a.b" walks into object member "a", then "b".</summary>
    public ParsonJsonValue? DotGet(string path)
    {
        int dot = path.IndexOf('.');
        if (dot < 0)
        {
            return Get(path);
        }

        ParsonJsonValue? inner = Get(path[..dot]);
        return inner is { Kind: ParsonJsonKind.Object } ? inner.DotGet(path[(dot + 1)..]) : null;
    }

    /// <summary>json_object_dotget_string: null unless the value is a string.</summary>
    public string? DotGetString(string path) => DotGet(path) is { Kind: ParsonJsonKind.String } v ? v.String : null;

    /// <summary>json_object_dotget_number: 0 unless the value is a number.</summary>
    public double DotGetNumber(string path) => DotGet(path) is { Kind: ParsonJsonKind.Number } v ? v.Number : 0;
}
