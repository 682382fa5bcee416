namespace Beemesh.Sidecar.State;

/// <summary>
/// One <c>--state NAME[=CONSISTENCY]</c> setting: a Dapr store name and the consistency it is
/// served with: <c>eventual</c> (local last-writer-wins) or <c>strong</c> (a Raft group among the
/// workload's replicas).
/// </summary>
/// <param name="Name">The store name apps pass as <c>storeName</c>.</param>
/// <param name="Consistency">"eventual" or "strong".</param>
public sealed record StateStoreSpec(string Name, string Consistency)
{
    /// <summary>The store every named workload gets when no <c>--state</c> is given.</summary>
    public static StateStoreSpec Default { get; } = new("statestore", "eventual");

    /// <summary>Parses <c>NAME[=eventual|strong]</c>; null with <paramref name="error"/> (one line) otherwise.</summary>
    public static StateStoreSpec? TryParse(string text, out string? error)
    {
        ArgumentNullException.ThrowIfNull(text);
        int equals = text.IndexOf('=', StringComparison.Ordinal);
        string name = equals < 0 ? text : text[..equals];
        string consistency = equals < 0 ? "eventual" : text[(equals + 1)..];
        if (name.Length is 0 or > 63 || !name.All(static c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            error = $"invalid state store name '{name}' in --state {text}: 1-63 letters, digits, '-', '_' or '.'";
            return null;
        }

        switch (consistency)
        {
            case "eventual":
            case "strong":
                error = null;
                return new StateStoreSpec(name, consistency);
            default:
                error = $"--state {text}: unknown consistency '{consistency}' (expected eventual or strong)";
                return null;
        }
    }
}
