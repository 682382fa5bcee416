using System.Buffers;

namespace Beemesh.Netstack.Stack;

public sealed partial class NetworkStack
{
    private static readonly TimeSpan TrimSettle = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan TrimMinInterval = TimeSpan.FromSeconds(10);

    // A flow's hold (see TcpFlow) is at most 4 MiB; arrays are powers of two from 64 KiB.
    private const int MaxHoldBuffer = 4 << 20;
    private const int HoldBuffersPerSize = 2;

    private MemoryTrimPolicy? _trimPolicy;
    private MemoryTrimTimer? _trimTimer;
    private ArrayPool<byte> _holdPool = NewHoldPool();
    private long _holdBytesOut;

    /// <summary>Bytes in hold buffers flows have rented and not yet returned.</summary>
    internal long HoldBytesOut => _holdBytesOut;

    /// <summary>
    /// What the trim policy watches: flows plus the KiB in hold buffers. A flow costs about 1 KiB, so
    /// both a burst of short connections and a bulk transfer that filled its hold count alike.
    /// </summary>
    private int Footprint => _tcpFlows.Count + _udpFlows.Count + (int)(_holdBytesOut >> 10);

    /// <summary>A buffer for bytes a host socket could not take yet (loop thread).</summary>
    internal byte[] RentHoldBuffer(int minimumLength)
    {
        byte[] buffer = _holdPool.Rent(minimumLength);
        _holdBytesOut += buffer.Length;
        return buffer;
    }

    /// <summary>Gives a hold buffer back (loop thread).</summary>
    internal void ReturnHoldBuffer(byte[] buffer)
    {
        _holdBytesOut -= buffer.Length;
        _holdPool.Return(buffer);
    }

    // The stack's own pool rather than the shared one: the shared pool keeps one array of every size
    // per thread (64 KiB to 4 MiB: 8 MiB after one transfer that filled its hold) and gives them back
    // only after a minute unused; this one is replaced, arrays and all, when the stack trims.
    private static ArrayPool<byte> NewHoldPool() => ArrayPool<byte>.Create(MaxHoldBuffer, HoldBuffersPerSize);

    /// <summary>After each batch: arms a trim check once the footprint fell well below its peak.</summary>
    private void ObserveFlowCount()
    {
        if (_options.MemoryTrimMinReleasedFlows <= 0)
        {
            return;
        }

        _trimPolicy ??= new MemoryTrimPolicy(_options.MemoryTrimMinReleasedFlows, TrimSettle, TrimMinInterval);
        int flows = Footprint;
        if (flows > _trimPolicy.Peak)
        {
            _trimPolicy.Observe(flows, default);
            return; // the common case under load: no clock read
        }

        if (_trimPolicy.Observe(flows, Now) is { } at)
        {
            _loop.Schedule(_trimTimer ??= new MemoryTrimTimer(this), at);
        }
    }

    /// <summary>
    /// Gives memory back after a burst: the flow tables shrink to their current size, the hold pool's
    /// idle arrays are let go (buffers still rented come back to the new pool), and a blocking,
    /// compacting full collection in aggressive mode lets the garbage collector decommit what the
    /// burst left committed, so the process's RSS follows its flows down.
    /// </summary>
    private void TrimMemory()
    {
        _tcpFlows.TrimExcess();
        _udpFlows.TrimExcess();
        _echoFlows.TrimExcess();
        _holdPool = NewHoldPool();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        Counters.MemoryTrims++;
    }

    private sealed class MemoryTrimTimer(NetworkStack stack) : IEventHandler
    {
        public void OnReady(uint events)
        {
        }

        public void OnTimer()
        {
            if (stack._trimPolicy is { } policy && policy.ShouldTrim(stack.Footprint, stack.Now))
            {
                stack.TrimMemory();
            }
        }
    }
}
