namespace Beemesh.Netstack.Stack;

public sealed partial class NetworkStack
{
    private static readonly TimeSpan TrimSettle = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan TrimMinInterval = TimeSpan.FromSeconds(10);

    private MemoryTrimPolicy? _trimPolicy;
    private MemoryTrimTimer? _trimTimer;

    /// <summary>After each batch: arms a trim check once the flow count fell well below its peak.</summary>
    private void ObserveFlowCount()
    {
        if (_options.MemoryTrimMinReleasedFlows <= 0)
        {
            return;
        }

        _trimPolicy ??= new MemoryTrimPolicy(_options.MemoryTrimMinReleasedFlows, TrimSettle, TrimMinInterval);
        int flows = _tcpFlows.Count + _udpFlows.Count;
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
    /// Gives memory back after a burst: the flow tables shrink to their current size, and a blocking,
    /// compacting full collection in aggressive mode lets the garbage collector decommit what the
    /// burst left committed, so the process's RSS follows its flows down.
    /// </summary>
    private void TrimMemory()
    {
        _tcpFlows.TrimExcess();
        _udpFlows.TrimExcess();
        _echoFlows.TrimExcess();
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
            if (stack._trimPolicy is { } policy && policy.ShouldTrim(stack._tcpFlows.Count + stack._udpFlows.Count, stack.Now))
            {
                stack.TrimMemory();
            }
        }
    }
}
