using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Beemesh.Sidecar.Http;

/// <summary>
/// One tunnel stream as a Kestrel connection. Reads come from the de-framed caller direction,
/// writes go raw to the caller. The pipes do not own the tunnel stream: the CONNECT request that
/// carries it ends when Kestrel disposes this connection (<see cref="Completion"/>).
/// <see cref="Abort(ConnectionAbortedException)"/> resets the tunnel stream (first call wins).
/// </summary>
internal sealed class TunnelConnection : ConnectionContext, IConnectionIdFeature, IConnectionTransportFeature, IConnectionItemsFeature, IConnectionLifetimeFeature, IConnectionEndPointFeature
{
    private static long s_nextId;
    private readonly CancellationTokenSource _closed = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action _resetFlow;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private int _aborted;

    public TunnelConnection(PipeReader input, PipeWriter output, MeshCaller caller, Action resetFlow)
    {
        _input = input;
        _output = output;
        _resetFlow = resetFlow;
        Transport = new DuplexPipe(input, output);
        ConnectionId = $"tunnel-{Interlocked.Increment(ref s_nextId)}";
        RemoteEndPoint = new IPEndPoint(caller.MeshAddress, 0);
        Features.Set<IConnectionIdFeature>(this);
        Features.Set<IConnectionTransportFeature>(this);
        Features.Set<IConnectionItemsFeature>(this);
        Features.Set<IConnectionLifetimeFeature>(this);
        Features.Set<IConnectionEndPointFeature>(this);
        Features.Set(caller);
    }

    /// <summary>Completes when Kestrel is done with the connection (it disposed it).</summary>
    public Task Completion => _completion.Task;

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; } = new FeatureCollection();

    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

    public override IDuplexPipe Transport { get; set; }

    public override CancellationToken ConnectionClosed
    {
        get => _closed.Token;
        set => throw new NotSupportedException();
    }

    public override EndPoint? RemoteEndPoint { get; set; }

    public override EndPoint? LocalEndPoint { get; set; }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }

        _resetFlow();
        _input.CancelPendingRead();
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public override async ValueTask DisposeAsync()
    {
        try
        {
            await _input.CompleteAsync().ConfigureAwait(false);
            await _output.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The tunnel stream is already gone; nothing left to flush. The token source is not
            // disposed: Kestrel may still read ConnectionClosed while it winds down.
        }
        finally
        {
            _completion.TrySetResult();
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
