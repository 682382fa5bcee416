using System.Net;
using System.Net.Sockets;
using System.Text;
using Beemesh.Sidecar.Outbound;

namespace Beemesh.Sidecar.Tests.Outbound;

public sealed class LoopbackServicesTests
{
    /// <summary>Guards against a hang only: the behaviour under test is the data, not its timing.</summary>
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    private readonly Dictionary<string, IReadOnlyList<int>> _mesh = new();

    private IReadOnlyList<int>? Ports(string service) => _mesh.GetValueOrDefault(service);

    // A range of its own per test, away from the default one, so tests running at once never share a listener address.
    private static IPNetwork Range(int third) => IPNetwork.Parse($"127.101.{third}.0/24");

    private static Task<Stream> NeverOpened(string service, int port, CancellationToken cancellationToken) =>
        throw new InvalidOperationException("no connection expected");

    [Fact]
    public async Task Services_get_addresses_in_order_of_first_use_and_keep_them()
    {
        _mesh["api.default"] = [8080];
        _mesh["web.shop"] = [80];
        await using var services = new LoopbackServices(Ports, NeverOpened, Range(1));

        Assert.Equal(IPAddress.Parse("127.101.1.1"), services.Resolve("api.default"));
        Assert.Equal(IPAddress.Parse("127.101.1.2"), services.Resolve("web.shop"));
        Assert.Equal(IPAddress.Parse("127.101.1.1"), services.Resolve("api.default"));
        Assert.Null(services.Resolve("nobody.default")); // no workload serves it: no address
        Assert.Null(services.AddressOf("nobody.default"));
        Assert.Equal([8080], services.ListeningPorts("api.default"));

        // A service that leaves the mesh and comes back keeps its address.
        _mesh.Remove("api.default");
        Assert.Null(services.Resolve("api.default"));
        _mesh["api.default"] = [8080];
        Assert.Equal(IPAddress.Parse("127.101.1.1"), services.Resolve("api.default"));
    }

    [Fact]
    public async Task A_used_up_range_gives_no_address_and_counts_it()
    {
        _mesh["a.default"] = [1001];
        _mesh["b.default"] = [1001];
        _mesh["c.default"] = [1001];
        await using var services = new LoopbackServices(Ports, NeverOpened, IPNetwork.Parse("127.101.2.0/30"));

        Assert.Equal(IPAddress.Parse("127.101.2.1"), services.Resolve("a.default"));
        Assert.Equal(IPAddress.Parse("127.101.2.2"), services.Resolve("b.default"));
        Assert.Null(services.Resolve("c.default"));
        Assert.Equal(1, services.Exhausted);
    }

    [Theory]
    [InlineData("10.0.0.0/24")]
    [InlineData("127.0.0.0/31")]
    [InlineData("::1/128")]
    public void A_range_outside_ipv4_loopback_is_refused(string range) =>
        Assert.Throws<ArgumentException>(() => new LoopbackServices(Ports, NeverOpened, IPNetwork.Parse(range)));

    [Fact]
    public async Task A_connection_to_the_address_is_carried_to_the_service_both_ways()
    {
        // The mesh side: an echo server standing in for the tunnel to the service's sidecar.
        using var echo = new TcpListener(IPAddress.Loopback, 0);
        echo.Start();
        var opened = new List<(string Service, int Port)>();
        async Task<Stream> Open(string service, int port, CancellationToken cancellationToken)
        {
            lock (opened)
            {
                opened.Add((service, port));
            }

            var client = new TcpClient();
            await client.ConnectAsync((IPEndPoint)echo.LocalEndpoint, cancellationToken);
            return client.GetStream();
        }

        Task serving = EchoOnceAsync(echo);
        _mesh["api.default"] = [8080, 9090];
        await using var services = new LoopbackServices(Ports, Open, Range(3));
        IPAddress address = services.Resolve("api.default")!;

        using var app = new TcpClient();
        await app.ConnectAsync(new IPEndPoint(address, 9090));
        NetworkStream stream = app.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("ping"));
        app.Client.Shutdown(SocketShutdown.Send); // half-close: the reply still comes back
        using var reader = new StreamReader(stream);
        Assert.Equal("echo:ping", await reader.ReadToEndAsync().WaitAsync(Guard));
        await serving.WaitAsync(Guard);
        Assert.Equal([("api.default", 9090)], opened);
    }

    [Fact]
    public async Task A_connection_the_mesh_cannot_carry_is_reset_and_counted()
    {
        _mesh["api.default"] = [8080];
        int failures = 0;
        Task<Stream> Refuse(string service, int port, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref failures);
            throw new IOException("refused by the peer");
        }

        await using var services = new LoopbackServices(Ports, Refuse, Range(4));
        IPAddress address = services.Resolve("api.default")!;
        using var app = new TcpClient();
        var buffer = new byte[16];
        // The reset may come while connecting or reading; either way nothing but EOF or a reset is seen.
        Exception? error = await Record.ExceptionAsync(async () =>
        {
            await app.ConnectAsync(new IPEndPoint(address, 8080));
            int read = await app.GetStream().ReadAsync(buffer).AsTask().WaitAsync(Guard);
            Assert.Equal(0, read); // or an RST, which throws
        });
        Assert.True(error is null or IOException or SocketException, error?.ToString());
        Assert.Equal(1, Volatile.Read(ref failures));
    }

    [Fact]
    public async Task Ports_declared_later_get_a_listener_at_the_next_refresh()
    {
        _mesh["api.default"] = [8080];
        await using var services = new LoopbackServices(Ports, NeverOpened, Range(5));
        IPAddress address = services.Resolve("api.default")!;
        Assert.Equal([8080], services.ListeningPorts("api.default"));

        _mesh["api.default"] = [8080, 8443];
        services.Refresh();

        Assert.Equal([8080, 8443], services.ListeningPorts("api.default"));
        using var probe = new TcpClient();
        await probe.ConnectAsync(new IPEndPoint(address, 8443)); // accepted: something listens there now
    }

    [Fact]
    public async Task A_port_that_cannot_be_bound_is_counted_and_the_others_are_served()
    {
        using var taken = new TcpListener(IPAddress.Parse("127.101.6.1"), 0);
        taken.Start();
        int busy = ((IPEndPoint)taken.LocalEndpoint).Port;
        _mesh["api.default"] = [busy, busy == 65535 ? 65534 : busy + 1];
        await using var services = new LoopbackServices(Ports, NeverOpened, Range(6));

        Assert.Equal(IPAddress.Parse("127.101.6.1"), services.Resolve("api.default"));
        Assert.Equal(1, services.ListenFailures);
        Assert.DoesNotContain(busy, services.ListeningPorts("api.default"));

        services.Refresh(); // not tried again and again
        Assert.Equal(1, services.ListenFailures);
    }

    private static async Task EchoOnceAsync(TcpListener listener)
    {
        using TcpClient client = await listener.AcceptTcpClientAsync();
        NetworkStream stream = client.GetStream();
        string text = await new StreamReader(stream).ReadToEndAsync();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("echo:" + text));
        client.Client.Shutdown(SocketShutdown.Send);
    }
}
