namespace Beemesh.Linearizability;

/// <summary>How an operation ended, as its client saw it.</summary>
public enum OperationOutcome
{
    /// <summary>The store acknowledged the operation (for a read: with the result recorded in the operation).</summary>
    Ok,

    /// <summary>
    /// The store refused a conditional operation because its condition did not hold (ETag mismatch, or
    /// the key exists for <see cref="OperationKind.Create"/>): a definite answer that says something about the state.
    /// </summary>
    Mismatch,

    /// <summary>The operation definitely had no effect (e.g. a 400 for a bad request); the checker ignores it.</summary>
    Failed,

    /// <summary>
    /// The client does not know whether the operation took effect (a timeout, a connection cut mid-request).
    /// The operation may take effect at any time after its call, or never; its return time is ignored.
    /// An unknown read tells nothing and is ignored.
    /// </summary>
    Unknown,
}
