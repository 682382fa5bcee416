namespace Beemesh.Linearizability;

/// <summary>
/// The sequential specification of one key: what each operation, applied to a state, may return and
/// what state it leaves. The store is assumed to give a key a new ETag on every successful write
/// (true of ETags that are log positions or random), so a compare-and-set or conditional delete can
/// succeed only on the ETag of the write it follows, and never on an ETag not yet seen.
/// </summary>
public static class KvRegisterModel
{
    /// <summary>
    /// Applies <paramref name="operation"/> to <paramref name="state"/>: false when the operation's
    /// recorded result is impossible in that state; otherwise true with the state it leaves. An
    /// <see cref="OperationOutcome.Unknown"/> conditional operation takes effect when its condition
    /// holds and is a no-op otherwise (not taking effect at all is the same as taking effect last, which
    /// the search also tries). Reads that are unknown and operations that failed are removed before the
    /// search and never reach this method.
    /// </summary>
    public static bool Step(in RegisterState state, KvOperation operation, out RegisterState next)
    {
        next = state;
        bool unknown = operation.Outcome == OperationOutcome.Unknown;
        switch (operation.Kind)
        {
            case OperationKind.Read:
                if (operation.Value is null)
                {
                    return !state.Exists;
                }

                if (!state.Exists || !string.Equals(state.Value, operation.Value, StringComparison.Ordinal))
                {
                    return false;
                }

                if (operation.ResultEtag is null)
                {
                    return true;
                }

                if (state.Etag is null)
                {
                    // The first sight of the ETag of the last write fixes it.
                    next = state with { Etag = operation.ResultEtag };
                    return true;
                }

                return string.Equals(state.Etag, operation.ResultEtag, StringComparison.Ordinal);

            case OperationKind.Write:
                next = RegisterState.Present(operation.Value!, operation.ResultEtag);
                return true;

            case OperationKind.CompareAndSet:
                return Conditional(state, state.HasEtag(operation.ExpectedEtag), operation, unknown, out next);

            case OperationKind.Create:
                return Conditional(state, !state.Exists, operation, unknown, out next);

            case OperationKind.Delete:
                if (operation.ExpectedEtag is null)
                {
                    next = RegisterState.Absent;
                    return true;
                }

                return Conditional(state, state.HasEtag(operation.ExpectedEtag), operation, unknown, out next);

            default:
                return false;
        }
    }

    private static bool Conditional(in RegisterState state, bool holds, KvOperation operation, bool unknown, out RegisterState next)
    {
        next = state;
        if (operation.Outcome == OperationOutcome.Mismatch)
        {
            return !holds;
        }

        if (!holds)
        {
            return unknown;
        }

        next = operation.Kind == OperationKind.Delete ? RegisterState.Absent : RegisterState.Present(operation.Value!, operation.ResultEtag);
        return true;
    }
}
