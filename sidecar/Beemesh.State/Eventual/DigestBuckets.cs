namespace Beemesh.State.Eventual;

/// <summary>
/// How replicas summarize an eventual store for anti-entropy: every key falls in one of
/// <see cref="Count"/> buckets (the top bits of a 64-bit FNV-1a hash of the key), and a bucket's
/// digest is the XOR of its entries' hashes of (key, stamp). XOR makes the digest independent of
/// the order entries arrived in and lets a store keep it current on every write in O(1). Two
/// replicas with equal digests for a bucket hold the same writes in it (up to a 64-bit collision);
/// for a bucket that differs they exchange the (key, stamp) pairs and then the entries.
/// </summary>
/// <remarks>The hash is fixed by this type, not by the runtime's randomized string hashing, so
/// every process computes the same digests.</remarks>
public static class DigestBuckets
{
    /// <summary>Bits of the key hash that pick the bucket.</summary>
    public const int Bits = 10;

    /// <summary>Buckets per store: 1024, so a digest is 8 KiB and a million keys make about 1000 per bucket.</summary>
    public const int Count = 1 << Bits;

    /// <summary>The bucket of <paramref name="key"/>.</summary>
    public static int Of(string key) => (int)(KeyHash(key) >> (64 - Bits));

    /// <summary>The contribution of a write (key, stamp) to its bucket's digest.</summary>
    public static ulong Hash(string key, HybridTimestamp stamp) =>
        Mix(KeyHash(key) ^ Mix((ulong)stamp.Ticks) ^ Mix(stamp.Replica + 0x9E3779B97F4A7C15UL));

    /// <summary>64-bit FNV-1a over the key's UTF-16 code units, finished with a mixer so the top bits spread.</summary>
    public static ulong KeyHash(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        ulong hash = 14695981039346656037UL;
        foreach (char c in key)
        {
            hash = (hash ^ (byte)c) * 1099511628211UL;
            hash = (hash ^ (byte)(c >> 8)) * 1099511628211UL;
        }

        return Mix(hash);
    }

    /// <summary>SplitMix64's finalizer: every input bit flips about half of the output bits.</summary>
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
