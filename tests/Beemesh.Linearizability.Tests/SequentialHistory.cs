namespace Beemesh.Linearizability.Tests;

/// <summary>
/// Builds histories that are linearizable by construction: operations run one after another on a
/// sequential store (each write gets a fresh ETag), each at its own instant, and each is then given a
/// random time window around that instant, so windows overlap their neighbours'. Some writes end
/// unknown (taken effect or not). Compare-and-sets use only ETags some earlier operation returned.
/// </summary>
internal static class SequentialHistory
{
    internal const long Spacing = 100;

    internal static List<KvOperation> Generate(int seed, int maxOperations = 40, int maxKeys = 3, int maxSpread = 300, int minOperations = 1)
    {
        var random = new Random(seed);
        int keys = random.Next(1, maxKeys + 1);
        int count = random.Next(minOperations, maxOperations + 1);
        int spread = random.Next(0, maxSpread + 1);
        bool writesReturnEtags = random.Next(2) == 0;
        var store = new Dictionary<string, (string Value, string Etag)>(StringComparer.Ordinal);
        var seen = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        int nextEtag = 1;
        var history = new List<KvOperation>();
        for (int i = 0; i < count; i++)
        {
            string key = "k" + random.Next(keys);
            bool exists = store.TryGetValue(key, out var current);
            List<string> known = seen.TryGetValue(key, out List<string>? list) ? list : seen[key] = [];
            long at = (i + 1) * Spacing;
            long call = at - random.Next(0, spread + 1);
            long @return = at + random.Next(0, spread + 1);
            int process = random.Next(1, 6);
            string value = "v" + i;
            bool unknown = random.Next(10) == 0;
            bool applied = !unknown || random.Next(2) == 0;
            OperationOutcome writeOutcome = unknown ? OperationOutcome.Unknown : OperationOutcome.Ok;
            string fresh = "e" + nextEtag;
            string? returned = writesReturnEtags && !unknown ? fresh : null;
            switch (random.Next(6))
            {
                case 0:
                case 1:
                    if (exists)
                    {
                        history.Add(KvOperation.Read(key, call, @return, current.Value, current.Etag, process));
                        known.Add(current.Etag);
                    }
                    else
                    {
                        history.Add(KvOperation.Read(key, call, @return, null, process: process));
                    }

                    continue;

                case 2:
                    history.Add(KvOperation.Write(key, call, @return, value, writeOutcome, returned, process));
                    break;

                case 3:
                    // A current ETag (success) when one was returned, else an older or unknown one (mismatch).
                    bool currentKnown = exists && known.Contains(current.Etag);
                    string expected = currentKnown && random.Next(3) != 0 ? current.Etag
                        : known.Count > 0 && random.Next(2) == 0 ? known[random.Next(known.Count)] : "never";
                    bool holds = exists && expected == current.Etag;
                    if (!holds || !applied)
                    {
                        applied = false;
                    }

                    history.Add(KvOperation.CompareAndSet(key, call, @return, expected, value,
                        unknown ? OperationOutcome.Unknown : holds ? OperationOutcome.Ok : OperationOutcome.Mismatch, holds ? returned : null, process));
                    break;

                case 4:
                    applied &= !exists;
                    history.Add(KvOperation.Create(key, call, @return, value,
                        unknown ? OperationOutcome.Unknown : !exists ? OperationOutcome.Ok : OperationOutcome.Mismatch, !exists ? returned : null, process));
                    break;

                default:
                    string? ifMatch = exists && known.Contains(current.Etag) && random.Next(2) == 0 ? current.Etag
                        : random.Next(3) == 0 ? "never" : null;
                    bool deletes = ifMatch is null || (exists && ifMatch == current.Etag);
                    applied &= deletes;
                    history.Add(KvOperation.Delete(key, call, @return, unknown ? OperationOutcome.Unknown : deletes ? OperationOutcome.Ok : OperationOutcome.Mismatch, ifMatch, process));
                    if (applied)
                    {
                        store.Remove(key);
                    }

                    continue;
            }

            if (applied)
            {
                store[key] = (value, fresh);
                nextEtag++;
                if (returned is not null)
                {
                    known.Add(fresh);
                }
            }
        }

        for (int i = 0; i < history.Count; i++)
        {
            history[i] = history[i] with { Id = i + 1 };
        }

        return history;
    }
}
