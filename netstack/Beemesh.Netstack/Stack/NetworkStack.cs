using System.Net;
using Beemesh.Netstack.Link;
using Beemesh.Netstack.Wire;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Netstack.Stack;

/// <summary>
/// The userland stack of one workload: reads frames from the guest's link, answers what it
/// owns itself (ARP, NDP, ping to its addresses, DHCP), and maps every guest TCP/UDP flow onto
/// a host socket (slirp behaviour, pasta's forwarding). Everything runs on one
/// <see cref="EventLoop"/> thread; the public methods that other threads may call say so.
/// </summary>
/// <remarks>
/// Buffer ownership: <c>_rx</c> holds the frame being processed and is only valid during
/// its handler; <c>_tx</c> is the one frame being built; both belong to the loop thread.
/// Frames that must wait for address resolution are copied into the neighbor queue.
/// </remarks>
public sealed partial class NetworkStack : IDisposable
{
    private const int MaxFrame = 65536 + 64;
    private const int ReadBatch = 64;

    private readonly StackOptions _options;
    private readonly ILinkDevice _link;
    private readonly EventLoop _loop;
    private readonly ILogger _logger;
    private readonly Random _random;
    private readonly Tcp.InitialSequenceNumbers _isn;
    private readonly byte[] _rx = new byte[MaxFrame];
    private readonly byte[] _tx = new byte[MaxFrame];
    private readonly int _l2; // offset of the Ethernet header in a frame buffer
    private readonly ulong _routerMac;
    private readonly LinkHandler _linkHandler;
    private int _linkToken = -1;
    private ushort _ipId;
    private PortForwardTable? _portForwards;
    private readonly Ipv4Reassembler _reassembler;
    private readonly ReassemblyTimer _reassemblyTimer;
    private TimeSpan? _reassemblyTimerAt;

    // Addresses, pre-computed as flow-table keys.
    internal readonly UInt128 Gateway4;
    internal readonly UInt128 Dns4;
    internal readonly UInt128 Guest4;
    internal readonly UInt128 Gateway6;
    internal readonly UInt128 Dns6;
    internal readonly UInt128 RouterLinkLocal;
    private readonly uint _network;
    private readonly uint _netmask;
    private readonly UInt128 _prefix6;

    /// <summary>
    /// Creates a stack on <paramref name="link"/>. Call <see cref="Run"/> on the thread that will own it.
    /// Initial sequence numbers come from a keyed hash with a secret drawn here (RFC 6528), never from <paramref name="random"/>.
    /// </summary>
    public NetworkStack(StackOptions options, ILinkDevice link, TimeProvider? time = null, ILogger? logger = null, Random? random = null)
        : this(options, link, time, logger, random, Tcp.InitialSequenceNumbers.CreateRandom())
    {
    }

    /// <summary>A stack whose initial sequence numbers come from <paramref name="isn"/> (a fixed key makes them reproducible).</summary>
    internal NetworkStack(StackOptions options, ILinkDevice link, TimeProvider? time, ILogger? logger, Random? random, Tcp.InitialSequenceNumbers isn)
    {
        _options = options;
        _isn = isn;
        _link = link;
        _loop = new EventLoop(time ?? TimeProvider.System);
        _logger = logger ?? NullLogger.Instance;
        _random = random ?? new Random();
        _l2 = link.VnetHeader ? VirtioNetHeader.Length : 0;
        _routerMac = ParseMac(options.RouterMac);
        _network = IpAddr.ToV4(IpAddr.From(options.Network));
        _netmask = options.PrefixLength == 0 ? 0 : uint.MaxValue << (32 - options.PrefixLength);
        Gateway4 = IpAddr.From(options.Gateway);
        Dns4 = IpAddr.From(options.Dns);
        Guest4 = IpAddr.From(options.Guest);
        Gateway6 = IpAddr.From(options.Ipv6Gateway);
        Dns6 = IpAddr.From(options.Ipv6Dns);
        _prefix6 = IpAddr.From(options.Ipv6Prefix);
        RouterLinkLocal = ((UInt128)0xFE80UL << 112) | 2;
        _linkHandler = new LinkHandler(this);
        _reassembler = new Ipv4Reassembler(counters: Counters.Reassembly);
        _reassemblyTimer = new ReassemblyTimer(this);
        _dhcp = CreateDhcpServer(options);
        _loop.AfterBatch = Flush;
        _loop.Faulted = OnHandlerFault;
    }

    /// <summary>Drop and traffic counters.</summary>
    public StackCounters Counters { get; } = new();

    /// <summary>Options the stack runs with.</summary>
    public StackOptions Options => _options;

    /// <summary>The port-forwarding table (safe from any thread).</summary>
    public Forwarding.IPortForwardTable PortForwards => _portForwards ??= new PortForwardTable(this);

    /// <summary>Raised on the loop thread when the link reports that it is gone.</summary>
    public event Action? LinkDown;

    internal EventLoop Loop => _loop;

    internal ILogger Logger => _logger;

    internal TimeSpan Now => _loop.Now;

    internal Random Random => _random;

    /// <summary>The initial sequence number for a new connection of <paramref name="key"/> now (RFC 6528).</summary>
    internal uint InitialSequenceNumber(FlowKey key) =>
        _isn.Next(key.RemoteAddress, key.RemotePort, key.GuestAddress, key.GuestPort, _loop.Now);

    /// <summary>Runs the stack on the calling thread until <see cref="Stop"/>.</summary>
    public void Run()
    {
        if (_link.Fd >= 0)
        {
            _linkToken = _loop.Add(_link.Fd, Interop.Sys.EPOLLIN, _linkHandler);
        }

        if (_options.EnableIpv6)
        {
            SendRouterAdvertisement(UInt128.Zero);
        }

        try
        {
            _loop.Run();
        }
        catch (Exception e)
        {
            // Only what cannot be contained to one flow gets here: the link, epoll, memory.
            _logger.LogCritical(e, "the network stack stopped: {ExceptionType}: {Message}", e.GetType().FullName, e.Message);
            throw;
        }
    }

    /// <summary>Stops <see cref="Run"/>; safe from any thread.</summary>
    public void Stop() => _loop.Stop();

    /// <summary>Runs <paramref name="action"/> on the loop thread; safe from any thread.</summary>
    public void Post(Action action) => _loop.Post(action);

    /// <summary>
    /// Runs <paramref name="action"/> on the loop thread and waits for its result (directly when
    /// already there, or before the loop runs). Throws <see cref="Forwarding.PortForwardException"/>
    /// when the loop does not answer within 10 s; the action's own exception is rethrown.
    /// </summary>
    internal T InvokeOnLoop<T>(Func<T> action)
    {
        if (_loop.OnLoopThread)
        {
            return action();
        }

        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _loop.Post(() =>
        {
            try
            {
                done.SetResult(action());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        });
        try
        {
            return done.Task.WaitAsync(TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
        }
        catch (TimeoutException e)
        {
            throw new Forwarding.PortForwardException("the network stack did not answer in time", e);
        }
    }

    /// <summary>
    /// Watches an extra fd on the loop (e.g. slirp4netns's --exit-fd); <paramref name="onReady"/> runs on
    /// the loop thread. An fd epoll refuses (closed, or a regular file) counts as ready at once: slirp4netns
    /// polls its exit fd with poll(2), which reports such an fd as an event (POLLNVAL, or always readable).
    /// </summary>
    public void Watch(int fd, Action onReady) => _loop.Post(() =>
    {
        if (!_loop.TryAdd(fd, Interop.Sys.EPOLLIN | Interop.Sys.EPOLLHUP, new CallbackHandler(onReady)))
        {
            onReady();
        }
    });

    /// <summary>
    /// Drives the stack once without a loop thread (tests): processes frames waiting in a link
    /// that has no fd, then host-socket readiness (waiting up to <paramref name="timeoutMs"/>),
    /// due timers and the flush.
    /// </summary>
    internal void PumpOnce(int timeoutMs = 0)
    {
        if (_link.Fd < 0)
        {
            _linkHandler.OnReady(Interop.Sys.EPOLLIN);
        }

        _loop.RunOnce(timeoutMs);
    }

    private sealed class LinkHandler(NetworkStack stack) : IEventHandler
    {
        public void OnReady(uint events)
        {
            for (int i = 0; i < ReadBatch; i++)
            {
                int n = stack._link.Read(stack._rx);
                if (n == 0)
                {
                    return;
                }

                if (n < 0)
                {
                    if (stack._linkToken >= 0)
                    {
                        stack._loop.Remove(stack._link.Fd, stack._linkToken);
                        stack._linkToken = -1;
                    }

                    stack.LinkDown?.Invoke();
                    return;
                }

                stack.Counters.FramesReceived++;
                try
                {
                    stack.ProcessFrame(stack._rx.AsSpan(0, n));
                }
                catch (Exception e) when (!EventLoop.IsFatal(e))
                {
                    // A flow's own faults are contained where the stack calls it; this is the
                    // stack's part of the frame (parsing, ARP, DHCP...): drop the frame, go on.
                    stack.CountFault("a guest frame", "dropped", e);
                }
            }
        }

        public void OnTimer()
        {
        }
    }

    /// <summary>
    /// The loop's fault hook: counts and logs a handler's fault before the loop abandons it. The
    /// link's own handler is not contained: the link failing means the stack cannot serve anyone.
    /// </summary>
    private bool OnHandlerFault(IEventHandler? handler, Exception e)
    {
        if (handler is LinkHandler)
        {
            return false;
        }

        CountFault(Describe(handler), handler is null ? "skipped" : "reset and closed", e);
        return true;
    }

    /// <summary>
    /// Contains an exception thrown by <paramref name="flow"/> when the stack called into it (a guest
    /// segment, the batch's flush): the flow is reset and closed, everything else goes on.
    /// </summary>
    internal void ContainFault(IEventHandler flow, Exception e) => _loop.Contain(flow, e);

    /// <summary>Counts a contained fault and logs one line with the exception's type.</summary>
    internal void CountFault(string what, string outcome, Exception e)
    {
        Counters.HandlerFaults++;
        LastFault = e;
        _logger.LogError("{What} failed with {ExceptionType} ({Message}): {Outcome}; the stack keeps serving", what, e.GetType().FullName, e.Message, outcome);
        _logger.LogDebug(e, "fault in {What}", what);
    }

    /// <summary>The last exception contained (diagnostics: the fuzzer treats one as a finding and clears it).</summary>
    internal Exception? LastFault { get; set; }

    private static string Describe(IEventHandler? handler) => handler switch
    {
        null => "a posted action",
        Nat.ITcpFlow f => $"TCP flow {f.Key}",
        Nat.UdpFlow u => $"UDP mapping {u.Key}",
        Nat.IcmpEchoFlow i => $"ICMP echo flow {i.Key}",
        Nat.PortForwardListener l => $"port forward {l.Rule.Id}",
        _ => handler.GetType().Name,
    };

    /// <summary>Arms the reassembly timer for the earliest pending deadline (see <see cref="EventLoop"/>'s re-arm rule).</summary>
    private void ScheduleReassemblyExpiry()
    {
        if (_reassembler.NextDeadline is { } next && (_reassemblyTimerAt is not { } queued || next < queued))
        {
            _reassemblyTimerAt = next;
            _loop.Schedule(_reassemblyTimer, next);
        }
    }

    private sealed class ReassemblyTimer(NetworkStack stack) : IEventHandler
    {
        public void OnReady(uint events)
        {
        }

        public void OnTimer()
        {
            stack._reassemblyTimerAt = null;
            stack._reassembler.Expire(stack.Now);
            stack.ScheduleReassemblyExpiry();
        }
    }

    private sealed class CallbackHandler(Action action) : IEventHandler
    {
        public void OnReady(uint events) => action();

        public void OnTimer()
        {
        }
    }

    private void ProcessFrame(Span<byte> frame)
    {
        bool checksumTrusted = false;
        if (_link.VnetHeader)
        {
            if (!VirtioNetHeader.TryCreate(frame, out var vnet))
            {
                Counters.MalformedFrames++;
                return;
            }

            // NEEDS_CSUM or DATA_VALID: the kernel vouches for the transport checksum (it may hold
            // only the pseudo-header sum).
            checksumTrusted = (vnet.Flags & (VirtioNetHeaderFlags.NeedsChecksum | VirtioNetHeaderFlags.DataValid)) != 0;
            frame = vnet.Payload;
        }

        if (!EthernetFrame.TryCreate(frame, out var ethernet))
        {
            Counters.MalformedFrames++;
            return;
        }

        ulong srcMac = ethernet.Source.ToUInt64();
        switch (ethernet.EtherType)
        {
            case EtherType.Arp:
                HandleArp(ethernet.Payload);
                break;
            case EtherType.Ipv4:
                HandleIpv4(ethernet.Payload, srcMac, checksumTrusted);
                break;
            case EtherType.Ipv6 when _options.EnableIpv6:
                HandleIpv6(ethernet.Payload, srcMac, checksumTrusted);
                break;
            default:
                Counters.UnsupportedFrames++;
                break;
        }
    }

    private void HandleIpv4(Span<byte> packet, ulong srcMac, bool checksumTrusted)
    {
        if (!Ipv4Packet.TryCreate(packet, out var ip) || !ip.VerifyChecksum())
        {
            Counters.MalformedFrames++;
            return;
        }

        if (ip.IsFragment)
        {
            // The kernel's checksum hints describe the fragment, not the datagram: verify in full.
            if (_reassembler.Add(ip.Buffer, Now, out Span<byte> whole) == ReassemblyOutcome.Complete)
            {
                HandleIpv4(whole, srcMac, checksumTrusted: false);
            }

            ScheduleReassemblyExpiry();
            return;
        }

        var src = IpAddr.From(ip.Source);
        var dst = IpAddr.From(ip.Destination);
        var l4 = ip.Payload;
        if (!ip.Source.IsUnspecified)
        {
            Learn(src, srcMac);
        }

        switch (ip.Protocol)
        {
            case IpProtocol.Tcp:
                HandleTcp(src, dst, l4, checksumTrusted);
                break;
            case IpProtocol.Udp:
                HandleUdp(src, dst, l4, checksumTrusted, srcMac);
                break;
            case IpProtocol.Icmp:
                HandleIcmpv4(src, dst, l4);
                break;
            default:
                Counters.UnsupportedFrames++;
                break;
        }
    }

    private void HandleIpv6(Span<byte> packet, ulong srcMac, bool checksumTrusted)
    {
        if (!Ipv6Packet.TryCreate(packet, out var ip)
            || !Ipv6Packet.TryFindUpperLayer(ip.Buffer, out var protocol, out int offset))
        {
            Counters.MalformedFrames++;
            return;
        }

        var src = IpAddr.From(ip.Source);
        var dst = IpAddr.From(ip.Destination);
        var l4 = ip.Buffer[offset..];
        if (src != UInt128.Zero)
        {
            Learn(src, srcMac);
        }

        switch (protocol)
        {
            case IpProtocol.Tcp:
                HandleTcp(src, dst, l4, checksumTrusted);
                break;
            case IpProtocol.Udp:
                HandleUdp(src, dst, l4, checksumTrusted, srcMac);
                break;
            case IpProtocol.Icmpv6:
                HandleIcmpv6(src, dst, l4, srcMac, ip.HopLimit);
                break;
            case IpProtocol.Ipv6Fragment:
                Counters.Fragments++;
                break;
            default:
                Counters.UnsupportedFrames++;
                break;
        }
    }

    /// <summary>True for IPv4 addresses inside the virtual network (gateway, DNS, guests).</summary>
    internal bool InSubnet4(UInt128 a) => IpAddr.IsV4(a) && (IpAddr.ToV4(a) & _netmask) == _network;

    /// <summary>True for addresses inside the IPv6 /64 prefix.</summary>
    internal bool InPrefix6(UInt128 a) => !IpAddr.IsV4(a) && (a >> 64) == (_prefix6 >> 64);

    internal static ulong ParseMac(string text)
    {
        if (!MacAddress.TryParse(text, out var mac))
        {
            throw new ArgumentException($"invalid MAC address '{text}'");
        }

        return mac.ToUInt64();
    }

    internal static IPEndPoint ToEndPoint(UInt128 a, ushort port) => new(IpAddr.ToIPAddress(a), port);

    /// <inheritdoc />
    public void Dispose()
    {
        CloseAllFlows();
        _loop.Dispose();
        _link.Dispose();
    }
}
