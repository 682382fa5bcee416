namespace Beemesh.State.Api;

/// <summary>The outcome of a group of writes; on anything but <see cref="Applied"/> none of them applied.</summary>
public enum StateWriteStatus
{
    /// <summary>Every write applied.</summary>
    Applied = 0,

    /// <summary>A write's ETag did not match the current value, or first-write found the key present (Dapr: 409).</summary>
    ETagMismatch = 1,

    /// <summary>A write's ETag is not one this store issues (Dapr: 400).</summary>
    ETagInvalid = 2,

    /// <summary>The store's byte budget would be exceeded (<see cref="Eventual.EventualStoreOptions.MaxBytes"/>).</summary>
    StoreFull = 3,
}
