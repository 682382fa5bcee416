using System.Net;
using System.Net.Sockets;
using Beemesh.Sidecar.Mesh;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Sidecar.Outbound;

/// <summary>
/// Mesh services on loopback addresses, for a workload that shares its sidecar's network (no tap,
/// no iptables): the first time the pod's resolver asks for a service, it gets an address of
/// <see cref="Range"/> (127.100.0.1, 127.100.0.2, ... in the order services are first asked for;
/// stable per service while the sidecar lives, never reused), and an
/// <see cref="UpstreamListener"/> on that address for each port the service declares in its route
/// records. Ports a service declares later get their listener at the next <see cref="Refresh"/>.
/// Linux routes all of 127.0.0.0/8 to the loopback interface, so nothing has to be configured.
/// </summary>
public sealed class LoopbackServices : IAsyncDisposable
{
    /// <summary>The default range: 127.100.0.0/16 (65,534 services).</summary>
    public static readonly IPNetwork DefaultRange = IPNetwork.Parse("127.100.0.0/16");

    private readonly Func<string, IReadOnlyList<int>?> _ports;
    private readonly UpstreamOpener _open;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly Dictionary<string, Service> _services = new(StringComparer.Ordinal);
    private readonly uint _first;
    private readonly uint _last;
    private uint _next;
    private bool _disposed;
    private long _exhausted;
    private long _listenFailures;

    /// <summary>
    /// Services of the mesh as <paramref name="ports"/> knows them (<c>NAME.NAMESPACE</c> to its
    /// declared ports, null when no workload serves it), on addresses of <paramref name="range"/>
    /// (an IPv4 loopback network; default <see cref="DefaultRange"/>), carried by <paramref name="open"/>.
    /// </summary>
    public LoopbackServices(Func<string, IReadOnlyList<int>?> ports, UpstreamOpener open, IPNetwork? range = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(ports);
        ArgumentNullException.ThrowIfNull(open);
        Range = range ?? DefaultRange;
        if (Range.BaseAddress.AddressFamily != AddressFamily.InterNetwork || !IPNetwork.Parse("127.0.0.0/8").Contains(Range.BaseAddress)
            || Range.PrefixLength is < 8 or > 30)
        {
            throw new ArgumentException($"{Range} is not an IPv4 loopback network of /8 to /30", nameof(range));
        }

        _ports = ports;
        _open = open;
        _logger = logger ?? NullLogger.Instance;
        uint baseAddress = ToUInt32(Range.BaseAddress);
        _first = baseAddress + 1;
        _last = baseAddress + (uint)((1L << (32 - Range.PrefixLength)) - 2);
        _next = _first;
    }

    /// <summary>The loopback network the addresses come from.</summary>
    public IPNetwork Range { get; }

    /// <summary>Services asked for whose address could not be given: the range is used up.</summary>
    public long Exhausted => Interlocked.Read(ref _exhausted);

    /// <summary>Service ports that could not be listened on (the error is logged).</summary>
    public long ListenFailures => Interlocked.Read(ref _listenFailures);

    /// <summary>
    /// The loopback address of <paramref name="service"/> (<c>NAME.NAMESPACE</c>), listening on its
    /// ports; null when no workload of the mesh serves it, or when the range is used up.
    /// </summary>
    public IPAddress? Resolve(string service)
    {
        ArgumentNullException.ThrowIfNull(service);
        if (_ports(service) is not { } ports)
        {
            return null;
        }

        lock (_gate)
        {
            if (_disposed)
            {
                return null;
            }

            if (!_services.TryGetValue(service, out Service? entry))
            {
                if (_next > _last)
                {
                    Interlocked.Increment(ref _exhausted);
                    return null;
                }

                entry = new Service(FromUInt32(_next++));
                _services.Add(service, entry);
            }

            Listen(service, entry, ports);
            return entry.Address;
        }
    }

    /// <summary>The address <paramref name="service"/> was given, or null when it has none yet.</summary>
    public IPAddress? AddressOf(string service)
    {
        lock (_gate)
        {
            return _services.TryGetValue(service, out Service? entry) ? entry.Address : null;
        }
    }

    /// <summary>The ports listened on for <paramref name="service"/>, in order.</summary>
    public IReadOnlyList<int> ListeningPorts(string service)
    {
        lock (_gate)
        {
            return _services.TryGetValue(service, out Service? entry) ? [.. entry.Listeners.Keys.Order()] : [];
        }
    }

    /// <summary>Adds listeners for ports the services that have an address declared since (call when the route records changed).</summary>
    public void Refresh()
    {
        lock (_gate)
        {
            foreach ((string service, Service entry) in _services)
            {
                if (_ports(service) is { } ports)
                {
                    Listen(service, entry, ports);
                }
            }
        }
    }

    private void Listen(string service, Service entry, IReadOnlyList<int> ports)
    {
        foreach (int port in ports)
        {
            if (entry.Listeners.ContainsKey(port) || entry.Failed.Contains(port))
            {
                continue;
            }

            var listener = new UpstreamListener(new IPEndPoint(entry.Address, port), service, port, _open, _logger);
            try
            {
                listener.Start();
                entry.Listeners.Add(port, listener);
            }
            catch (SocketException e)
            {
                entry.Failed.Add(port);
                Interlocked.Increment(ref _listenFailures);
                Log.ServiceListenFailed(_logger, service, entry.Address.ToString(), port, e.Message);
            }
        }
    }

    private static uint ToUInt32(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }

    private static IPAddress FromUInt32(uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return new IPAddress(bytes);
    }

    /// <summary>Stops every listener.</summary>
    public async ValueTask DisposeAsync()
    {
        List<UpstreamListener> listeners;
        lock (_gate)
        {
            _disposed = true;
            listeners = [.. _services.Values.SelectMany(s => s.Listeners.Values)];
        }

        foreach (UpstreamListener listener in listeners)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }
    }

    private sealed class Service(IPAddress address)
    {
        public IPAddress Address { get; } = address;

        public Dictionary<int, UpstreamListener> Listeners { get; } = [];

        public HashSet<int> Failed { get; } = [];
    }
}
