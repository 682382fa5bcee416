using System.Net;
using Beemesh.Identity.Authority;

namespace Beemesh.Identity.Join;

/// <summary>
/// What an agent started with <c>--join</c> does before it loads its CA: reuse the node credentials
/// saved in its state directory, or join with the token and save what it receives. After this,
/// <see cref="CertificateAuthority.LoadOrCreate"/> on the same state directory signs with the node CA.
/// </summary>
public static class NodeJoin
{
    /// <summary>
    /// Returns this node's credentials: the saved ones when the state directory has them (the token,
    /// if any, is then not used), otherwise those obtained by joining through <paramref name="endpoints"/>
    /// with <paramref name="token"/> (the printed form). Throws <see cref="InvalidOperationException"/>
    /// with one line when the state directory belongs to another node or to a root holder, or when
    /// there is no token to join with; <see cref="JoinException"/> when the join is refused;
    /// <see cref="FormatException"/> for a malformed token.
    /// </summary>
    public static async Task<NodeCredentials> EnsureJoinedAsync(
        string stateDirectory, string nodeName, IReadOnlyList<EndPoint> endpoints, string? token, CancellationToken cancellationToken = default, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(stateDirectory);
        if (NodeCredentialStore.Load(stateDirectory) is NodeCredentials saved)
        {
            if (saved.NodeName != nodeName)
            {
                string other = saved.NodeName;
                saved.Dispose();
                throw new InvalidOperationException($"{stateDirectory} holds the credentials of node {other}, not {nodeName}");
            }

            return saved;
        }

        if (File.Exists(Path.Combine(stateDirectory, CertificateAuthority.KeyFileName)))
        {
            throw new InvalidOperationException($"{stateDirectory} holds a trust domain root key: it is the first node of its trust domain and joins no other");
        }

        if (string.IsNullOrWhiteSpace(token))
        {
            throw new InvalidOperationException($"{stateDirectory} holds no node credentials yet: pass --join and --token to join a trust domain");
        }

        JoinToken parsed = JoinToken.Parse(token);
        NodeCredentials credentials = await JoinClient.JoinAsync(endpoints, parsed, nodeName, cancellationToken, timeProvider: timeProvider).ConfigureAwait(false);
        try
        {
            NodeCredentialStore.Save(stateDirectory, credentials);
        }
        catch
        {
            credentials.Dispose();
            throw;
        }

        return credentials;
    }
}
