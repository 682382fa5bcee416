using Beemesh.Agent.Client;
using Beemesh.Authorization;

namespace Beemesh.Agent.Policies;

/// <summary>
/// The agent's policies, keyed by namespace and name, with a version bumped by every change.
/// Watchers wait on a completion source that every change completes and replaces, so a change
/// wakes them at once instead of at their next poll (sidecars must re-evaluate live connections
/// within 100 ms of a change). Thread-safe.
/// </summary>
internal sealed class PolicyStore
{
    private readonly object _lock = new();
    private readonly SortedDictionary<string, PolicyDocument> _byKey = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private TaskCompletionSource _changed = NewSignal();
    private long _version;
    private int _waiters;

    public PolicyStore(TimeProvider time)
    {
        _time = time;
    }

    public long Version
    {
        get
        {
            lock (_lock)
            {
                return _version;
            }
        }
    }

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
    public int Waiters => Volatile.Read(ref _waiters);

    /// <summary>
    /// Loads <paramref name="yaml"/> and, when every document is valid, adds or replaces each policy
    /// in one version step. A file with any error changes nothing.
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
            foreach (AuthorizationPolicy policy in policies)
            {
                _byKey[Key(policy.Namespace, policy.Name)] = new PolicyDocument
                {
                    Namespace = policy.Namespace,
                    Name = policy.Name,
                    Action = policy.Action.ToString().ToUpperInvariant(),
                    Yaml = DocumentAt(yaml, policy.SourceLine),
                };
                applied.Add(policy.ToString());
            }

            wake = Bump();
            result = new PolicyApplyResult { Version = _version, Applied = applied };
        }

        wake.TrySetResult();
        return true;
    }

    /// <summary>Deletes one policy; returns the new version, or null when there was no such policy.</summary>
    public long? Delete(string ns, string name)
    {
        TaskCompletionSource wake;
        long version;
        lock (_lock)
        {
            if (!_byKey.Remove(Key(ns, name)))
            {
                return null;
            }

            wake = Bump();
            version = _version;
        }

        wake.TrySetResult();
        return version;
    }

    public PolicySet Snapshot()
    {
        lock (_lock)
        {
            return new PolicySet { Version = _version, Policies = [.. _byKey.Values] };
        }
    }

    /// <summary>
    /// Answers as soon as the version exceeds <paramref name="since"/>, or with the unchanged set once
    /// <paramref name="timeout"/> has passed.
    /// </summary>
    public async Task<PolicySet> WatchAsync(long since, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Task changed;
        lock (_lock)
        {
            if (_version > since)
            {
                return Snapshot();
            }

            changed = _changed.Task;
        }

        // The timeout is armed before the watch counts as waiting, so whoever observes the count
        // (tests advancing a fake clock) knows the timer exists.
        Task timed = changed.WaitAsync(timeout, _time, cancellationToken);
        Interlocked.Increment(ref _waiters);
        try
        {
            await timed.ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
        finally
        {
            Interlocked.Decrement(ref _waiters);
        }

        return Snapshot();
    }

    private TaskCompletionSource Bump()
    {
        _version++;
        TaskCompletionSource old = _changed;
        _changed = NewSignal();
        return old;
    }

    // Continuations run off the lock holder's thread, so a slow watcher cannot delay the apply.
    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

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
