namespace Beemesh.Netstack.Stack;

/// <summary>Something registered with the <see cref="EventLoop"/>: an fd's readiness or a due timer.</summary>
internal interface IEventHandler
{
    /// <summary>The fd became ready; <paramref name="events"/> are the epoll flags.</summary>
    void OnReady(uint events);

    /// <summary>A timer scheduled with <see cref="EventLoop.Schedule"/> is due (it may be stale: check the real deadline).</summary>
    void OnTimer();

    /// <summary>
    /// A call into this handler threw and the stack gives it up: a flow resets its peers, closes
    /// its host socket and leaves the stack's tables; a stack service does nothing (the loop drops
    /// its registration). Called on the loop thread, once; an exception from it is only counted.
    /// </summary>
    void Abandon()
    {
    }
}
