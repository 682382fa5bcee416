namespace Beemesh.Linearizability;

/// <summary>
/// The Wing–Gong linearizability search with Lowe's memoization, as Porcupine runs it, for one key.
/// <para>
/// The history becomes a list of call and return events ordered by time (a call before a return at
/// the same time, so touching operations count as concurrent; an operation of unknown outcome
/// returns at +∞). The search walks the list from its head: at a call it tries to take that operation
/// next in the linearization (the model must allow its result in the current state); taking it
/// removes its call and return from the list and starts again at the head. Reaching a return means
/// an operation that had to come before this point was not taken, so the last taken operation is
/// put back and the search moves past it. Every (set of taken operations, state) pair is remembered,
/// and a step that would reach a pair already seen is skipped: the same set in the same state leads
/// to the same futures. An empty list is a linearization; backtracking past the first operation
/// proves there is none.
/// </para>
/// </summary>
internal sealed class WingGongSearch
{
    private const int Head = 0;
    private readonly IReadOnlyList<KvOperation> _operations;
    private readonly int[] _op;
    private readonly bool[] _isCall;
    private readonly int[] _match;
    private readonly int[] _next;
    private readonly int[] _prev;
    private readonly ulong[] _zobrist;

    internal WingGongSearch(IReadOnlyList<KvOperation> operations)
    {
        _operations = operations;
        int n = operations.Count;
        var events = new (long Time, bool Call, int Op)[2 * n];
        for (int i = 0; i < n; i++)
        {
            KvOperation o = operations[i];
            events[2 * i] = (o.CallTime, true, i);
            events[(2 * i) + 1] = (o.Outcome == OperationOutcome.Unknown ? long.MaxValue : o.ReturnTime, false, i);
        }

        // Time, then calls before returns, then the operation's position: a total, reproducible order.
        Array.Sort(events, (a, b) => a.Time != b.Time ? a.Time.CompareTo(b.Time) : a.Call != b.Call ? (a.Call ? -1 : 1) : a.Op.CompareTo(b.Op));
        int nodes = (2 * n) + 1;
        _op = new int[nodes];
        _isCall = new bool[nodes];
        _match = new int[nodes];
        _next = new int[nodes];
        _prev = new int[nodes];
        var callNode = new int[n];
        var returnNode = new int[n];
        for (int e = 0; e < events.Length; e++)
        {
            int node = e + 1;
            _op[node] = events[e].Op;
            _isCall[node] = events[e].Call;
            (events[e].Call ? callNode : returnNode)[events[e].Op] = node;
        }

        for (int i = 0; i < n; i++)
        {
            _match[callNode[i]] = returnNode[i];
        }

        for (int node = 0; node < nodes; node++)
        {
            _next[node] = node + 1 < nodes ? node + 1 : -1;
            _prev[node] = node - 1;
        }

        _zobrist = new ulong[n];
        ulong seed = 0x9E3779B97F4A7C15;
        for (int i = 0; i < n; i++)
        {
            _zobrist[i] = SplitMix(ref seed);
        }
    }

    /// <summary>Runs the search from <paramref name="initial"/>.</summary>
    internal SearchResult Run(RegisterState initial, long maxSteps, CancellationToken cancellation)
    {
        int n = _operations.Count;
        var linearized = new ulong[(n + 63) / 64];
        ulong linearizedHash = 0;
        var cache = new HashSet<CacheKey>(CacheKey.Comparer.Instance);
        var stackNode = new int[n];
        var stackState = new RegisterState[n];
        int depth = 0;
        int[] best = [];
        RegisterState bestState = initial;
        RegisterState state = initial;
        long steps = 0;
        int entry = _next[Head];
        while (_next[Head] != -1)
        {
            if (++steps > maxSteps)
            {
                return Longest(CheckOutcome.Unknown, steps - 1, depth, stackNode, state, best, bestState);
            }

            if ((steps & 0xFFF) == 0)
            {
                cancellation.ThrowIfCancellationRequested();
            }

            if (_isCall[entry])
            {
                int op = _op[entry];
                if (KvRegisterModel.Step(state, _operations[op], out RegisterState newState))
                {
                    linearized[op >> 6] |= 1UL << (op & 63);
                    ulong hash = linearizedHash ^ _zobrist[op];
                    var probe = new CacheKey(linearized, hash, newState);
                    if (!cache.Contains(probe))
                    {
                        cache.Add(new CacheKey((ulong[])linearized.Clone(), hash, newState));
                        stackNode[depth] = entry;
                        stackState[depth] = state;
                        depth++;
                        state = newState;
                        linearizedHash = hash;
                        Lift(entry);
                        entry = _next[Head];
                        continue;
                    }

                    linearized[op >> 6] &= ~(1UL << (op & 63));
                }

                entry = _next[entry];
            }
            else
            {
                if (depth == 0)
                {
                    return Longest(CheckOutcome.NotLinearizable, steps, depth, stackNode, state, best, bestState);
                }

                if (depth > best.Length)
                {
                    best = Prefix(stackNode, depth);
                    bestState = state;
                }

                depth--;
                entry = stackNode[depth];
                state = stackState[depth];
                int op = _op[entry];
                linearized[op >> 6] &= ~(1UL << (op & 63));
                linearizedHash ^= _zobrist[op];
                Unlift(entry);
                entry = _next[entry];
            }
        }

        return new SearchResult(CheckOutcome.Linearizable, steps, [], state);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }

    private SearchResult Longest(CheckOutcome outcome, long steps, int depth, int[] stackNode, RegisterState state, int[] best, RegisterState bestState) =>
        depth >= best.Length
            ? new SearchResult(outcome, steps, Prefix(stackNode, depth), state)
            : new SearchResult(outcome, steps, best, bestState);

    private int[] Prefix(int[] stackNode, int depth)
    {
        var prefix = new int[depth];
        for (int i = 0; i < depth; i++)
        {
            prefix[i] = _op[stackNode[i]];
        }

        return prefix;
    }

    // Takes a call and its return out of the list (the operation is now in the linearization).
    private void Lift(int call)
    {
        _next[_prev[call]] = _next[call];
        _prev[_next[call]] = _prev[call];
        int ret = _match[call];
        _next[_prev[ret]] = _next[ret];
        if (_next[ret] != -1)
        {
            _prev[_next[ret]] = _prev[ret];
        }
    }

    // Puts them back where they were: the reverse of Lift, return first.
    private void Unlift(int call)
    {
        int ret = _match[call];
        _next[_prev[ret]] = ret;
        if (_next[ret] != -1)
        {
            _prev[_next[ret]] = ret;
        }

        _next[_prev[call]] = call;
        _prev[_next[call]] = call;
    }

    /// <summary>What one search found.</summary>
    /// <param name="Outcome">Linearizable, not, or unknown (step limit).</param>
    /// <param name="Steps">Steps taken.</param>
    /// <param name="Longest">For a failure, the longest linearization found (operation indices, in order).</param>
    /// <param name="State">The state after <paramref name="Longest"/> (or after everything, on success).</param>
    internal readonly record struct SearchResult(CheckOutcome Outcome, long Steps, int[] Longest, RegisterState State);

    // A memoized (set of linearized operations, state) pair; the hash of the set is kept alongside it.
    private readonly record struct CacheKey(ulong[] Bits, ulong Hash, RegisterState State)
    {
        internal sealed class Comparer : IEqualityComparer<CacheKey>
        {
            internal static readonly Comparer Instance = new();

            public bool Equals(CacheKey x, CacheKey y) =>
                x.Hash == y.Hash && x.State.Equals(y.State) && x.Bits.AsSpan().SequenceEqual(y.Bits);

            public int GetHashCode(CacheKey key) => HashCode.Combine(key.Hash, key.State);
        }
    }
}
