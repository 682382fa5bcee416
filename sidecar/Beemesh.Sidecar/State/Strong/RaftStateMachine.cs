using System.Buffers;
using Beemesh.State.Api;
using Beemesh.State.Strong;
using DotNext.IO;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;

namespace Beemesh.Sidecar.State.Strong;

/// <summary>
/// DotNext's side of a strong store: applies committed log entries to a
/// <see cref="StrongStateMachine"/>, hands the result to the proposer waiting on this replica (the
/// entry's context), and writes and restores snapshots in the store's directory.
/// </summary>
internal sealed class RaftStateMachine(DirectoryInfo location, StrongStateMachine state) : SimpleStateMachine(location)
{
    /// <summary>A snapshot every this many entries; the log before it can then be dropped.</summary>
    private const long SnapshotEvery = 1024;

    /// <summary>The replicated state.</summary>
    public StrongStateMachine State => state;

    private long _undecodable;

    /// <summary>Entries that did not decode (a log written by something else); skipped, never applied.</summary>
    public long Undecodable => Interlocked.Read(ref _undecodable);

    /// <inheritdoc />
    protected override ValueTask<bool> ApplyAsync(LogEntry entry, CancellationToken token)
    {
        if (entry.IsConfiguration || entry.IsSnapshot || !entry.TryGetPayload(out var payload) || payload.IsEmpty)
        {
            return new(false);
        }

        StateWriteResult result;
        try
        {
            result = state.Apply(entry.Index, StrongCommand.Decode(payload.IsSingleSegment ? payload.FirstSpan : payload.ToArray()));
        }
        catch (FormatException)
        {
            Interlocked.Increment(ref _undecodable);
            result = new StateWriteResult(StateWriteStatus.ETagInvalid, null);
        }

        (entry.Context as TaskCompletionSource<StateWriteResult>)?.TrySetResult(result);
        return new(entry.Index % SnapshotEvery == 0);
    }

    /// <inheritdoc />
    protected override ValueTask PersistAsync(IAsyncBinaryWriter writer, CancellationToken token) =>
        writer.Invoke(state.Snapshot(), token);

    /// <inheritdoc />
    protected override async ValueTask RestoreAsync(FileInfo snapshotFile, CancellationToken token)
    {
        byte[] bytes = await File.ReadAllBytesAsync(snapshotFile.FullName, token).ConfigureAwait(false);
        state.Restore(bytes);
    }
}
