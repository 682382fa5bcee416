namespace Beemesh.Sidecar.State.Strong;

/// <summary>A strong store could not answer in time: no leader, no quorum, or the leader could not be reached.</summary>
public sealed class StrongStoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
