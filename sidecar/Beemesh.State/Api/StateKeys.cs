namespace Beemesh.State.Api;

/// <summary>
/// Dapr's key scoping: an app's key <c>k</c> is stored as <c>appid||k</c>, so apps sharing a store
/// never see each other's keys, and a key containing <c>||</c> is refused (it could name another
/// app's key).
/// </summary>
public static class StateKeys
{
    /// <summary>The separator between app id and key.</summary>
    public const string Separator = "||";

    /// <summary>Longest key accepted, in characters.</summary>
    public const int MaxKeyLength = 4096;

    /// <summary>Scopes <paramref name="key"/> to <paramref name="appId"/>; null with <paramref name="error"/> for a key Dapr refuses.</summary>
    public static string? TryScope(string appId, string? key, out string? error)
    {
        ArgumentNullException.ThrowIfNull(appId);
        if (string.IsNullOrEmpty(key))
        {
            error = "key is empty";
            return null;
        }

        if (key.Contains(Separator, StringComparison.Ordinal))
        {
            error = $"input key/keyPrefix '{key}' can't contain '{Separator}'";
            return null;
        }

        if (key.Length > MaxKeyLength)
        {
            error = $"key is longer than {MaxKeyLength} characters";
            return null;
        }

        error = null;
        return appId + Separator + key;
    }

    /// <summary>The app's own key from a scoped one.</summary>
    public static string Unscope(string scopedKey)
    {
        ArgumentNullException.ThrowIfNull(scopedKey);
        int at = scopedKey.IndexOf(Separator, StringComparison.Ordinal);
        return at < 0 ? scopedKey : scopedKey[(at + Separator.Length)..];
    }
}
