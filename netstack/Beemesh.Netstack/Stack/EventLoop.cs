using System.Collections.Concurrent;
using Beemesh.Netstack.Interop;

namespace Beemesh.Netstack.Stack;

/// <summary>
/// The single thread that owns the tap fd, every host socket and every protocol state machine,
/// so that no lock is taken on the fast path (pasta's model). Readiness comes from epoll,
/// time from an injected <see cref="TimeProvider"/>, and other threads reach the loop only
/// through <see cref="Post"/>.
/// </summary>
/// <remarks>
/// Timers: a <see cref="TimerQueue"/>, one pending deadline per handler. Scheduling keeps the
/// earlier of the queued and the new deadline; a later deadline is found when the earlier one
/// fires and the handler re-arms. That keeps RTO restarts (one per ACK) off the heap. A handler
/// that goes away calls <see cref="Cancel"/>, so the heap never keeps a dead flow reachable.
/// <para>
/// Faults: an exception from one handler (readiness, timer) or posted action is contained there:
/// <see cref="Faulted"/> hears of it, the handler is <see cref="IEventHandler.Abandon">abandoned</see>
/// and unregistered, and the loop goes on with the rest of the batch. Exceptions that mean the
/// process itself is broken (<see cref="IsFatal"/>), and handlers <see cref="Faulted"/> declines to
/// contain, end <see cref="Run"/>.
/// </para>
/// </remarks>
internal sealed class EventLoop : IDisposable
{
    private readonly int _epfd;
    private readonly int _wakeFd;
    private readonly TimeProvider _time;
    private readonly long _start;
    private readonly List<IEventHandler?> _handlers = new();
    private readonly List<int> _fds = new();
    private readonly Stack<int> _freeTokens = new();
    private readonly TimerQueue _timers = new();
    private readonly ConcurrentQueue<Action> _posted = new();
    // Pinned for as long as the loop waits in epoll_wait, which for an idle stack is always: on the
    // pinned-object heap it leaves the GC free to compact the start-up garbage around it (in gen0 it
    // kept that region, 2.8 MiB, committed; loadtests/reports/memory.md).
    private readonly byte[] _events = GC.AllocateArray<byte>(256 * 16, pinned: true);
    private volatile bool _stopping;
    private int _threadId = -1;

    public EventLoop(TimeProvider time)
    {
        _time = time;
        _start = time.GetTimestamp();
        _epfd = Sys.epoll_create1(Sys.EPOLL_CLOEXEC);
        if (_epfd < 0)
        {
            throw new InvalidOperationException($"epoll_create1 failed: errno {Sys.Errno}");
        }

        _wakeFd = Sys.eventfd(0, Sys.EFD_NONBLOCK | Sys.EFD_CLOEXEC);
        if (_wakeFd < 0 || Sys.EpollCtl(_epfd, Sys.EPOLL_CTL_ADD, _wakeFd, Sys.EPOLLIN, ulong.MaxValue) < 0)
        {
            throw new InvalidOperationException($"eventfd failed: errno {Sys.Errno}");
        }
    }

    /// <summary>Monotonic time since the loop was created.</summary>
    public TimeSpan Now => _time.GetElapsedTime(_start);

    /// <summary>True when called on the loop thread (or before the loop runs).</summary>
    public bool OnLoopThread => _threadId == -1 || _threadId == Environment.CurrentManagedThreadId;

    /// <summary>Registers an fd; returns the token to pass to <see cref="Modify"/> and <see cref="Remove"/>.</summary>
    public int Add(int fd, uint events, IEventHandler handler)
    {
        int token;
        if (_freeTokens.Count > 0)
        {
            token = _freeTokens.Pop();
            _handlers[token] = handler;
            _fds[token] = fd;
        }
        else
        {
            token = _handlers.Count;
            _handlers.Add(handler);
            _fds.Add(fd);
        }

        if (Sys.EpollCtl(_epfd, Sys.EPOLL_CTL_ADD, fd, events, (ulong)token) < 0)
        {
            int errno = Sys.Errno;
            _handlers[token] = null;
            _freeTokens.Push(token);
            throw new InvalidOperationException($"epoll_ctl(ADD, {fd}) failed: errno {errno}");
        }

        return token;
    }

    /// <summary>Registers an fd like <see cref="Add"/>, but returns false instead of throwing when epoll refuses it.</summary>
    public bool TryAdd(int fd, uint events, IEventHandler handler) => TryAdd(fd, events, handler, out _);

    /// <summary>Registers an fd like <see cref="Add"/>; false (and token -1) when epoll refuses it.</summary>
    public bool TryAdd(int fd, uint events, IEventHandler handler, out int token)
    {
        try
        {
            token = Add(fd, events, handler);
            return true;
        }
        catch (InvalidOperationException)
        {
            token = -1;
            return false;
        }
    }

    /// <summary>Changes the events an fd is watched for.</summary>
    public void Modify(int fd, int token, uint events) => Sys.EpollCtl(_epfd, Sys.EPOLL_CTL_MOD, fd, events, (ulong)token);

    /// <summary>Stops watching an fd (call before closing it).</summary>
    public void Remove(int fd, int token)
    {
        Sys.EpollCtl(_epfd, Sys.EPOLL_CTL_DEL, fd, 0, 0);
        if (token >= 0 && token < _handlers.Count)
        {
            _handlers[token] = null;
            _freeTokens.Push(token);
        }
    }

    /// <summary>Queues a timer callback at <paramref name="deadline"/> (see the class remarks for the re-arm rule).</summary>
    public void Schedule(IEventHandler handler, TimeSpan deadline) => _timers.Schedule(handler, deadline);

    /// <summary>Drops the handler's pending timer, if any (call when the handler goes away).</summary>
    public void Cancel(IEventHandler handler) => _timers.Cancel(handler);

    /// <summary>Handlers with a pending timer.</summary>
    public int PendingTimers => _timers.Count;

    /// <summary>Runs <paramref name="action"/> on the loop thread soon; safe from any thread.</summary>
    public void Post(Action action)
    {
        _posted.Enqueue(action);
        Wake();
    }

    /// <summary>Makes <see cref="Run"/> return after the current iteration; safe from any thread.</summary>
    public void Stop()
    {
        _stopping = true;
        Wake();
    }

    /// <summary>
    /// Told of every contained fault before the handler is abandoned: the handler (null for a posted
    /// action) and the exception. Returns false when the handler is essential to the loop's owner (its
    /// failure means the owner is broken): the exception then ends <see cref="Run"/>.
    /// </summary>
    public Func<IEventHandler?, Exception, bool>? Faulted { get; set; }

    /// <summary>Exceptions no handler can recover from: the process is out of memory or stack.</summary>
    public static bool IsFatal(Exception e) => e is OutOfMemoryException or InsufficientExecutionStackException;

    /// <summary>
    /// Contains a fault of <paramref name="handler"/> (null: no handler is to blame): tells
    /// <see cref="Faulted"/>, abandons the handler, drops its registration and its timer. False when
    /// <see cref="Faulted"/> declined: the caller rethrows. Loop thread only.
    /// </summary>
    public bool Contain(IEventHandler? handler, Exception exception)
    {
        if (Faulted is { } faulted && !faulted(handler, exception))
        {
            return false;
        }

        if (handler is null)
        {
            return true;
        }

        try
        {
            handler.Abandon();
        }
        catch (Exception e) when (!IsFatal(e))
        {
            // Its state is what failed: whatever it still holds is dropped below.
        }

        // Whatever the handler failed to release: a registration left behind would keep
        // reporting an fd nobody serves, a timer would keep the handler reachable.
        _timers.Cancel(handler);
        for (int token = 0; token < _handlers.Count; token++)
        {
            if (ReferenceEquals(_handlers[token], handler))
            {
                Remove(_fds[token], token);
            }
        }

        return true;
    }

    /// <summary>Called after each batch of readiness events, before sleeping again.</summary>
    public Action? AfterBatch { get; set; }

    /// <summary>Runs until <see cref="Stop"/>.</summary>
    public void Run()
    {
        _threadId = Environment.CurrentManagedThreadId;
        while (!_stopping)
        {
            int timeout = -1;
            if (_timers.TryPeek(out var first))
            {
                var wait = first - Now;
                timeout = wait <= TimeSpan.Zero ? 0 : (int)Math.Min(int.MaxValue, Math.Ceiling(wait.TotalMilliseconds));
            }

            RunOnce(timeout);
        }
    }

    /// <summary>
    /// One iteration: waits up to <paramref name="timeoutMs"/> (-1 = until something happens) for
    /// readiness, then runs ready handlers, posted actions, due timers and <see cref="AfterBatch"/>.
    /// Tests call it directly with 0 to drive the loop without a thread.
    /// </summary>
    public void RunOnce(int timeoutMs)
    {
        if (!_posted.IsEmpty)
        {
            timeoutMs = 0;
        }

        int n = Sys.EpollWait(_epfd, _events, timeoutMs);
        if (n < 0)
        {
            if (Sys.Errno == Sys.EINTR)
            {
                return;
            }

            throw new InvalidOperationException($"epoll_wait failed: errno {Sys.Errno}");
        }

        for (int i = 0; i < n; i++)
        {
            Sys.EpollEntry(_events, i, out uint flags, out ulong token);
            if (token == ulong.MaxValue)
            {
                DrainWake();
                continue;
            }

            var handler = token < (ulong)_handlers.Count ? _handlers[(int)token] : null;
            if (handler is null)
            {
                continue;
            }

            try
            {
                handler.OnReady(flags);
            }
            catch (Exception e) when (!IsFatal(e))
            {
                if (!Contain(handler, e))
                {
                    throw;
                }
            }
        }

        RunPosted();
        RunTimers();
        AfterBatch?.Invoke();
    }

    private void RunPosted()
    {
        while (_posted.TryDequeue(out var action))
        {
            try
            {
                action();
            }
            catch (Exception e) when (!IsFatal(e))
            {
                if (!Contain(null, e))
                {
                    throw;
                }
            }
        }
    }

    private void RunTimers()
    {
        var now = Now;
        while (_timers.TryTakeDue(now, out var handler))
        {
            try
            {
                handler.OnTimer();
            }
            catch (Exception e) when (!IsFatal(e))
            {
                if (!Contain(handler, e))
                {
                    throw;
                }
            }
        }
    }

    private unsafe void Wake()
    {
        ulong one = 1;
        Sys.write(_wakeFd, (byte*)&one, 8);
    }

    private unsafe void DrainWake()
    {
        ulong value;
        Sys.read(_wakeFd, (byte*)&value, 8);
    }

    public void Dispose()
    {
        Sys.close(_wakeFd);
        Sys.close(_epfd);
    }
}
