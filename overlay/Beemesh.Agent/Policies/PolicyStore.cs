using Beemesh.Agent.Client;
using Beemesh.Agent.State;
using Beemesh.Authorization;

namespace Beemesh.Agent.Policies;

/// <summary>
/// The agent's policies, keyed by namespace and name, with a version bumped by every change.
/// Watchers wait on a <see cref="ChangeFeed"/>, so a change wakes them at once instead of at their
/// next poll (sidecars must re-evaluate live connections within 100 ms of a change). With a state
/// file, every change is written to it durably before it takes effect (a change that cannot be
/// stored is refused), and the store starts from it, version included. Thread-safe.
/// </summary>
internal sealed class PolicyStore
{
    private readonly object _lock = new();
    private readonly SortedDictionary<string, PolicyDocument> _byKey = new(StringComparer.Ordinal);
    private readonly ChangeFeed _feed;
    private readonly string? _stateFile;

    /// <summary>An empty store that keeps nothing on disk.</summary>
    public PolicyStore(TimeProvider time)
        : this(time, null)
    {
    }

    /// <summary>
    /// A store kept in <paramref name="stateFile"/> (null: memory only), starting from its contents.
    /// Throws <see cref="InvalidOperationException"/> naming the file when it is corrupt.
    /// </summary>
    public PolicyStore(TimeProvider time, string? stateFile)
    {
        _stateFile = stateFile;
        long version = 0;
        if (stateFile is not null && StateFile.Load(stateFile, StateJsonContext.Default.StoredPolicies, Check) is { } stored)
        {
            foreach (PolicyDocument document in stored.Policies)
            {
                _byKey[Key(document.Namespace, document.Name)] = document;
            }

            version = stored.Version;
        }

        _feed = new ChangeFeed(time, version);
    }

    /// <summary>
    /// Raised after each change of the set (apply, replace, delete), outside the store's lock. The
    /// overlay's policy sync publishes on it at once.
    /// </summary>
    public event Action? Changed;

    /// <summary>Random per agent start; carried by list and watch answers so a sidecar notices a restart.</summary>
    public string Epoch => _feed.Epoch;

    public long Version => _feed.Version;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _byKey.Count;
            }
        }
    }

    /// <summary>Number of watches currently waiting for a change.</summary>
    public int Waiters => _feed.Waiters;

    /// <summary>Completes once at least <paramref name="count"/> watches wait for a change.</summary>
    public Task WaitForWaitersAsync(int count, CancellationToken cancellationToken) => _feed.WaitForWaitersAsync(count, cancellationToken);

    /// <summary>
    /// Loads <paramref name="yaml"/> and, when every document is valid, adds or replaces each policy
    /// in one version step. A file with any error changes nothing. Throws <see cref="IOException"/>
    /// (and changes nothing) when the change cannot be stored.
    /// </summary>
    public bool Apply(string yaml, out PolicyApplyResult? result, out IReadOnlyList<PolicyError> errors)
    {
        result = null;
        if (!PolicyLoader.Load(yaml, out IReadOnlyList<AuthorizationPolicy> policies, out errors))
        {
            return false;
        }

        if (policies.Count == 0)
        {
            errors = [new PolicyError(1, 1, string.Empty, "the file holds no AuthorizationPolicy")];
            return false;
        }

        var applied = new List<string>(policies.Count);
        TaskCompletionSource wake;
        lock (_lock)
        {
            var next = new SortedDictionary<string, PolicyDocument>(_byKey, StringComparer.Ordinal);
            foreach (AuthorizationPolicy policy in policies)
            {
                next[Key(policy.Namespace, policy.Name)] = new PolicyDocument
                {
                    Namespace = policy.Namespace,
                    Name = policy.Name,
                    Action = policy.Action.ToString().ToUpperInvariant(),
                    Yaml = DocumentAt(yaml, policy.SourceLine),
                };
                applied.Add(policy.ToString());
            }

            long version = Commit(next, out wake);
            result = new PolicyApplyResult { Version = version, Applied = applied };
        }

        ChangeFeed.Wake(wake);
        Changed?.Invoke();
        return true;
    }

    /// <summary>
    /// Replaces the whole set with the policies of <paramref name="yaml"/> (empty for none), in one
    /// version step; used when the mesh's newest policy set arrives from another node. A set with any
    /// error changes nothing. Throws <see cref="IOException"/> (and changes nothing) when it cannot be stored.
    /// </summary>
    public bool ReplaceAll(string yaml, out IReadOnlyList<PolicyError> errors)
    {
        IReadOnlyList<AuthorizationPolicy> policies = [];
        errors = [];
        if (!string.IsNullOrWhiteSpace(yaml) && !PolicyLoader.Load(yaml, out policies, out errors))
        {
            return false;
        }

        TaskCompletionSource wake;
        lock (_lock)
        {
            var next = new SortedDictionary<string, PolicyDocument>(StringComparer.Ordinal);
            foreach (AuthorizationPolicy policy in policies)
            {
                next[Key(policy.Namespace, policy.Name)] = new PolicyDocument
                {
                    Namespace = policy.Namespace,
                    Name = policy.Name,
                    Action = policy.Action.ToString().ToUpperInvariant(),
                    Yaml = DocumentAt(yaml, policy.SourceLine),
                };
            }

            Commit(next, out wake);
        }

        ChangeFeed.Wake(wake);
        Changed?.Invoke();
        return true;
    }

    /// <summary>
    /// Deletes one policy; returns the new version, or null when there was no such policy. Throws
    /// <see cref="IOException"/> (and changes nothing) when the change cannot be stored.
    /// </summary>
    public long? Delete(string ns, string name)
    {
        TaskCompletionSource wake;
        long version;
        lock (_lock)
        {
            if (!_byKey.ContainsKey(Key(ns, name)))
            {
                return null;
            }

            var next = new SortedDictionary<string, PolicyDocument>(_byKey, StringComparer.Ordinal);
            next.Remove(Key(ns, name));
            version = Commit(next, out wake);
        }

        ChangeFeed.Wake(wake);
        Changed?.Invoke();
        return version;
    }

    public PolicySet Snapshot()
    {
        lock (_lock)
        {
            return new PolicySet { Epoch = _feed.Epoch, Version = _feed.Version, Policies = [.. _byKey.Values] };
        }
    }

    /// <summary>
    /// Answers as soon as the version exceeds <paramref name="since"/> (at once when
    /// <paramref name="epoch"/> is given and is not this run's), or with the unchanged set once
    /// <paramref name="timeout"/> has passed.
    /// </summary>
    public async Task<PolicySet> WatchAsync(string? epoch, long since, TimeSpan timeout, CancellationToken cancellationToken)
    {
        await _feed.WaitAsync(epoch, since, timeout, cancellationToken).ConfigureAwait(false);
        return Snapshot();
    }

    /// <inheritdoc cref="WatchAsync(string?, long, TimeSpan, CancellationToken)"/>
    public Task<PolicySet> WatchAsync(long since, TimeSpan timeout, CancellationToken cancellationToken) =>
        WatchAsync(null, since, timeout, cancellationToken);

    /// <summary>Stores <paramref name="next"/> at the next version, then installs it (under the lock).</summary>
    private long Commit(SortedDictionary<string, PolicyDocument> next, out TaskCompletionSource wake)
    {
        long version = _feed.Version + 1;
        if (_stateFile is not null)
        {
            StateFile.Save(_stateFile, new StoredPolicies { Version = version, Policies = [.. next.Values] }, StateJsonContext.Default.StoredPolicies);
        }

        _byKey.Clear();
        foreach (KeyValuePair<string, PolicyDocument> entry in next)
        {
            _byKey.Add(entry.Key, entry.Value);
        }

        (_, wake) = _feed.Bump();
        return version;
    }

    /// <summary>A stored file must hold what this store would have stored: every document valid, names unique.</summary>
    private static string? Check(StoredPolicies stored)
    {
        if (stored.Format != 1)
        {
            return $"format {stored.Format} is not 1";
        }

        if (stored.Version < 0 || stored.Policies is null)
        {
            return "version or policies missing";
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (PolicyDocument? document in stored.Policies)
        {
            if (document is null || string.IsNullOrEmpty(document.Yaml))
            {
                return "a policy without its document";
            }

            if (!PolicyLoader.Load(document.Yaml, out IReadOnlyList<AuthorizationPolicy> loaded, out IReadOnlyList<PolicyError> errors) || loaded.Count != 1)
            {
                return $"policy {document.Namespace}/{document.Name} does not load: {(errors.Count > 0 ? errors[0].ToString() : "not one document")}";
            }

            if (loaded[0].Namespace != document.Namespace || loaded[0].Name != document.Name || !seen.Add(Key(document.Namespace, document.Name)))
            {
                return $"policy {document.Namespace}/{document.Name} does not match its document or appears twice";
            }
        }

        return null;
    }

    private static string Key(string ns, string name) => ns + "/" + name;

    /// <summary>The lines of the document that contains <paramref name="line"/>, without its markers.</summary>
    private static string DocumentAt(string yaml, int line)
    {
        string[] lines = yaml.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        int index = Math.Clamp(line - 1, 0, Math.Max(lines.Length - 1, 0));
        int start = index;
        while (start > 0 && !IsMarker(lines[start - 1]))
        {
            start--;
        }

        int end = index;
        while (end + 1 < lines.Length && !IsMarker(lines[end + 1]))
        {
            end++;
        }

        string text = string.Join('\n', lines, start, end - start + 1).TrimEnd('\n');
        return text + "\n";
    }

    // YAML 1.2 §9.2: a document starts after "---" and may end with "..." at the start of a line.
    private static bool IsMarker(string line) =>
        line.StartsWith("---", StringComparison.Ordinal) && (line.Length == 3 || char.IsWhiteSpace(line[3]))
        || line.StartsWith("...", StringComparison.Ordinal) && (line.Length == 3 || char.IsWhiteSpace(line[3]));
}
