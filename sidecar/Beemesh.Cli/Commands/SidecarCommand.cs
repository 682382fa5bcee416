using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Beemesh.Agent.Client;
using Beemesh.Sidecar.Mesh;
using Beemesh.Sidecar.Inbound;
using Beemesh.Sidecar.Outbound;
using Beemesh.Sidecar.State;
using Beemesh.Sidecar.Tunnel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh sidecar --name NAME [--namespace NS] --inbound PORT [--upstream NAME.NS:PORT=LOCALPORT]...</c>:
/// the injected-container mode. The sidecar shares the pod's network namespace and has no tap: it
/// terminates inbound mTLS on PORT (authorizing every flow, continuously) and forwards to the
/// workload on localhost, and it exposes each upstream on a localhost port, carried through the mesh.
/// In a pod's network namespace (or with <c>--state</c>/<c>--resources-path</c>) it also serves
/// Dapr's state API to the pod on 127.0.0.1:3500 (HTTP) and 127.0.0.1:50001 (gRPC), with the stores
/// <c>beemesh run</c> would give the workload; the pods of one workload (same name and namespace)
/// share them, reaching each other at their <c>--state-address</c>.
/// </summary>
public static class SidecarCommand
{
    /// <summary>
    /// Builds the command; <paramref name="environment"/> reads its environment variables
    /// (<see cref="Environment.GetEnvironmentVariable(string)"/> when null).
    /// </summary>
    public static Command Create(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var name = new Option<string>("--name") { Description = "Workload (service account) name", Required = true };
        var ns = new Option<string>("--namespace") { Description = "Mesh namespace", DefaultValueFactory = _ => "default" };
        var inbound = new Option<int>("--inbound") { Description = "Port of the mTLS tunnel that callers reach", Required = true };
        var ports = new Option<string[]>("--port") { Description = "A workload port served to the mesh: PORT[/tcp|/http]", AllowMultipleArgumentsPerToken = false };
        var upstreams = new Option<string[]>("--upstream") { Description = "Expose a mesh service locally: NAME.NAMESPACE:PORT=LOCALPORT", AllowMultipleArgumentsPerToken = false };
        var agent = new Option<string>("--agent") { Description = "The node agent's directory", DefaultValueFactory = _ => AgentClient.DefaultAgentDirectory() };
        var meshCidr = new Option<string>("--mesh-cidr") { Description = "The agent's mesh address range", DefaultValueFactory = _ => "10.200.0.0/16" };
        var debug = new Option<bool>("--debug") { Description = "Log to stderr at debug level" };
        var dns = new Option<string?>("--dns")
        {
            Description = "Serve the pod's DNS on ADDRESS:PORT (UDP): mesh names get a loopback address of 127.100.0.0/16 where the sidecar listens on the service's ports",
        };
        var dnsUpstream = new Option<string?>("--dns-upstream")
        {
            Description = "Resolver for every other name: ADDRESS[:PORT] (default: the first nameserver of /etc/resolv.conf that is not --dns)",
        };
        var nodeLoopback = new Option<string?>("--node-loopback")
        {
            Description = "Address at which this network reaches the node's loopback (10.0.2.2 behind slirp4netns): tunnels to this node's workloads are dialled there",
        };
        var state = new Option<string[]>("--state") { Description = "A Dapr state store for the pod: NAME[=eventual|strong] (default statestore=eventual)", AllowMultipleArgumentsPerToken = false };
        var resources = CliSupport.ResourcesPathOption();
        var stateSync = new Option<double>("--state-sync") { Description = "Seconds between the anti-entropy rounds of eventual stores among the workload's replicas", DefaultValueFactory = _ => 1.0 };
        var stateAddress = new Option<string?>("--state-address")
        {
            Description = "The pod's own address, where the workload's other pods reach this one's store replicas (default 127.0.0.1: replicas in this network namespace only)",
        };
        var command = new Command("sidecar", "Run the sidecar next to a workload that shares its network namespace (no tap)")
        {
            name, ns, inbound, ports, upstreams, agent, meshCidr, debug, dns, dnsUpstream, nodeLoopback, state, resources, stateSync, stateAddress,
        };
        command.SetAction((parse, cancel) => RunAsync(
            new Settings(parse.GetValue(name)!, parse.GetValue(ns)!, parse.GetValue(inbound), parse.GetValue(ports) ?? [],
                parse.GetValue(upstreams) ?? [], parse.GetValue(agent)!, parse.GetValue(meshCidr)!, parse.GetValue(debug),
                parse.GetValue(dns), parse.GetValue(dnsUpstream), parse.GetValue(nodeLoopback),
                parse.GetValue(state) ?? [], parse.GetValue(resources) ?? [], parse.GetValue(stateSync), parse.GetValue(stateAddress),
                environment(TunnelKeepAlive.Variable)),
            parse.InvocationConfiguration.Error, cancel));
        return command;
    }

    /// <summary>Set by <c>beemesh inject</c> from the downward API (fieldRef metadata.name); named in the start-up line.</summary>
    public const string PodNameVariable = "BEEMESH_POD_NAME";

    private sealed record Settings(
        string Name, string Namespace, int Inbound, string[] Ports, string[] Upstreams, string Agent, string MeshCidr, bool Debug,
        string? Dns, string? DnsUpstream, string? NodeLoopback, string[] State, string[] Resources, double StateSync, string? StateAddress,
        string? KeepAlive);

    private sealed record Upstream(string Name, int Port, int LocalPort);

    /// <summary>
    /// The resolver that <c>--dns</c> relays other names to: <paramref name="explicitUpstream"/>, else
    /// the first nameserver of <paramref name="resolvConf"/> that is not <paramref name="listen"/>
    /// itself (the pod's resolv.conf may name the sidecar first); null when there is none.
    /// </summary>
    internal static IPEndPoint? DnsUpstream(IPEndPoint listen, IPEndPoint? explicitUpstream, Beemesh.Netstack.Dns.ResolvConf resolvConf)
    {
        if (explicitUpstream is not null)
        {
            return explicitUpstream;
        }

        foreach (IPEndPoint upstream in resolvConf.Upstreams)
        {
            bool self = upstream.Port == listen.Port
                && (upstream.Address.Equals(listen.Address) || (listen.Address.Equals(IPAddress.Any) && upstream.Address.AddressFamily == AddressFamily.InterNetwork));
            if (!self && !upstream.Address.Equals(IPAddress.Any) && !upstream.Address.Equals(IPAddress.IPv6Any))
            {
                return upstream;
            }
        }

        return null;
    }

    private static bool TryParseEndPoint(string text, int defaultPort, out IPEndPoint? endPoint)
    {
        endPoint = null;
        if (IPAddress.TryParse(text, out IPAddress? address) && !text.Contains(']', StringComparison.Ordinal))
        {
            endPoint = new IPEndPoint(address, defaultPort);
            return true;
        }

        if (IPEndPoint.TryParse(text, out IPEndPoint? parsed) && parsed.Port > 0)
        {
            endPoint = parsed.Port == 0 ? null : parsed;
            return endPoint is not null;
        }

        return false;
    }

    private static async Task<int> RunAsync(Settings s, TextWriter error, CancellationToken cancel)
    {
        if (CliSupport.CheckWorkloadNames(s.Name, s.Namespace) is { } badName)
        {
            error.WriteLine($"beemesh sidecar: {badName}");
            return 2;
        }

        if (s.Inbound is < 1 or > 65535)
        {
            error.WriteLine($"beemesh sidecar: invalid --inbound {s.Inbound}: ports are 1-65535");
            return 2;
        }

        var upstreams = new List<Upstream>();
        foreach (string text in s.Upstreams)
        {
            int eq = text.LastIndexOf('=');
            int colon = eq > 0 ? text.LastIndexOf(':', eq) : -1;
            if (colon <= 0 || !int.TryParse(text[(colon + 1)..eq], out int port) || !int.TryParse(text[(eq + 1)..], out int local)
                || port is < 1 or > 65535 || local is < 1 or > 65535)
            {
                error.WriteLine($"beemesh sidecar: invalid --upstream '{text}': expected NAME.NAMESPACE:PORT=LOCALPORT");
                return 2;
            }

            upstreams.Add(new Upstream(text[..colon], port, local));
        }

        var ports = new List<WorkloadPort>();
        foreach (string p in s.Ports)
        {
            if (!CliSupport.TryParseMeshPort(p, out var port, out string? portError))
            {
                error.WriteLine($"beemesh sidecar: {portError}");
                return 2;
            }

            ports.Add(port!);
        }

        IPEndPoint? dnsListen = null;
        IPEndPoint? dnsUpstream = null;
        if (s.Dns is not null)
        {
            if (!TryParseEndPoint(s.Dns, 53, out dnsListen))
            {
                error.WriteLine($"beemesh sidecar: invalid --dns '{s.Dns}': expected ADDRESS[:PORT], e.g. 127.0.0.1:53");
                return 2;
            }

            IPEndPoint? explicitUpstream = null;
            if (s.DnsUpstream is not null && !TryParseEndPoint(s.DnsUpstream, 53, out explicitUpstream))
            {
                error.WriteLine($"beemesh sidecar: invalid --dns-upstream '{s.DnsUpstream}': expected ADDRESS[:PORT]");
                return 2;
            }

            dnsUpstream = DnsUpstream(dnsListen!, explicitUpstream, Beemesh.Netstack.Dns.ResolvConf.Load());
            if (dnsUpstream is null)
            {
                error.WriteLine($"beemesh sidecar: --dns {dnsListen}: /etc/resolv.conf names no resolver other than this one for the other names; pass --dns-upstream");
                return 2;
            }
        }
        else if (s.DnsUpstream is not null)
        {
            error.WriteLine("beemesh sidecar: --dns-upstream needs --dns");
            return 2;
        }

        IPAddress? nodeLoopback = null;
        if (s.NodeLoopback is not null && !IPAddress.TryParse(s.NodeLoopback, out nodeLoopback))
        {
            error.WriteLine($"beemesh sidecar: invalid --node-loopback '{s.NodeLoopback}': expected an IP address");
            return 2;
        }

        if (CliSupport.CheckTunnelKeepAlive(s.KeepAlive) is { } badKeepAlive)
        {
            error.WriteLine($"beemesh sidecar: {badKeepAlive}");
            return 2;
        }

        if (CliSupport.CheckStateSync(s.StateSync) is { } badSync)
        {
            error.WriteLine($"beemesh sidecar: {badSync}");
            return 2;
        }

        IPAddress? stateAddress = null;
        if (s.StateAddress is not null && (!IPAddress.TryParse(s.StateAddress, out stateAddress) || stateAddress.Equals(IPAddress.Any) || stateAddress.Equals(IPAddress.IPv6Any)))
        {
            error.WriteLine($"beemesh sidecar: invalid --state-address '{s.StateAddress}': expected the pod's own IP address (other pods dial it)");
            return 2;
        }

        if (CliSupport.ResolveStateStores("beemesh sidecar", s.State, s.Resources, s.Name, s.Namespace, error) is not { } stores)
        {
            return 2;
        }

        bool stateAsked = s.State.Length > 0 || s.Resources.Length > 0 || stateAddress is not null;
        using var loggerFactory = CliSupport.CreateLoggerFactory(s.Debug);
        MeshSidecar sidecar;
        try
        {
            using var startup = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            startup.CancelAfter(TimeSpan.FromSeconds(15));
            sidecar = await MeshSidecar.StartAsync(s.Agent, s.Name, s.Namespace, ports, new LocalGuestConnector(),
                new IPEndPoint(IPAddress.Loopback, s.Inbound), null, null, s.MeshCidr, loggerFactory, startup.Token);
        }
        catch (Exception e) when (e is HttpRequestException or AgentApiException or OperationCanceledException or InvalidOperationException or IOException)
        {
            error.WriteLine($"beemesh sidecar: cannot join the mesh through the agent at {s.Agent}: {e.Message}");
            return 1;
        }

        await using (sidecar)
        {
            // In another network namespace than the agent (a pod's), callers reach this sidecar only
            // through the agent's tunnel port, which hands it their connections over the channel.
            bool handoffOnly = sidecar.Workload.ServerName is not null;
            if (handoffOnly && sidecar.Handoff is null)
            {
                error.WriteLine($"beemesh sidecar: this sidecar is in another network namespace than the agent and the agent did not open its tunnel handoff channel ({Path.Combine(s.Agent, TunnelHandoff.SocketName)}), so nothing could reach it");
                return 1;
            }

            sidecar.NodeLoopback = nodeLoopback;
            // The state API: always in a pod's own network namespace (its loopback is the pod's); in the
            // agent's namespace only when asked for, since that loopback is the whole node's.
            WorkloadStateApi? stateApi = null;
            if (handoffOnly || stateAsked)
            {
                (stateApi, string? stateError) = await StartStateApiAsync(s, sidecar, stores, handoffOnly, stateAddress, loggerFactory, error, cancel);
                if (stateError is not null)
                {
                    error.WriteLine($"beemesh sidecar: {stateError}");
                    return 1;
                }
            }

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
            var logger = loggerFactory.CreateLogger("beemesh.sidecar");
            var listeners = new List<UpstreamListener>();
            LoopbackServices? services = null;
            MeshDnsServer? dnsServer = null;
            EventHandler refresh = (_, _) => services?.Refresh();
            try
            {
                foreach (var u in upstreams)
                {
                    var listener = new UpstreamListener(new IPEndPoint(IPAddress.Loopback, u.LocalPort), u.Name, u.Port, sidecar.OpenServiceAsync, logger);
                    listeners.Add(listener);
                    listener.Start();
                }

                if (dnsListen is not null)
                {
                    services = new LoopbackServices(sidecar.Directory.ServicePorts, sidecar.OpenServiceAsync, logger: logger);
                    sidecar.Directory.Changed += refresh;
                    string podNamespace = s.Namespace;
                    dnsServer = new MeshDnsServer(
                        query => MeshServiceName.Parse(query, podNamespace) is { } service ? services.Resolve(service) : null,
                        dnsUpstream!, listen: dnsListen);
                }
            }
            catch (SocketException e)
            {
                error.WriteLine(dnsServer is null && services is not null
                    ? $"beemesh sidecar: cannot serve DNS on {dnsListen}: {e.Message}"
                    : $"beemesh sidecar: cannot listen for an upstream: {e.Message}");
                await StopAsync(listeners, services, dnsServer, sidecar, refresh, stateApi);
                return 1;
            }

            string pod = Environment.GetEnvironmentVariable(PodNameVariable) is { Length: > 0 } podName ? $", pod {podName}" : string.Empty;
            string dnsText = dnsServer is null ? string.Empty : $", DNS {dnsServer.EndPoint} (other names to {dnsUpstream})";
            string stateText = stateApi is null ? string.Empty : $", Dapr state API {stateApi.Server.HttpEndPoint} and {stateApi.Server.GrpcEndPoint} ({string.Join(", ", stores.Select(static x => $"{x.Name}={x.Consistency}"))})";
            error.WriteLine($"beemesh sidecar: {sidecar.Workload.SpiffeId} at {sidecar.Workload.MeshAddress}, {(handoffOnly ? $"inbound through the agent's tunnel port {sidecar.Workload.TunnelEndpoint}" : $"tunnel 127.0.0.1:{s.Inbound}")}{pod}{dnsText}{stateText}");
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
            }

            await StopAsync(listeners, services, dnsServer, sidecar, refresh, stateApi);
            return 0;
        }
    }

    /// <summary>
    /// Starts the pod's state API on 127.0.0.1:3500 and :50001 with <paramref name="stores"/>: replicated
    /// among the workload's sidecars (found in the agent's state directory, reached at their
    /// <c>--state-address</c>, and on other nodes through their tunnel ports), as <c>beemesh run</c> does.
    /// In a pod without <c>--state-address</c> the other pods cannot reach this one: eventual stores
    /// are the pod's alone and a strong store is refused. Returns the API, or the reason it is not served.
    /// </summary>
    private static async Task<(WorkloadStateApi? Api, string? Error)> StartStateApiAsync(
        Settings s, MeshSidecar sidecar, List<StateStoreSpec> stores, bool ownNamespace, IPAddress? stateAddress,
        ILoggerFactory loggerFactory, TextWriter error, CancellationToken cancel)
    {
        Beemesh.Sidecar.State.Strong.StrongStoreContext? replication = null;
        if (ownNamespace && stateAddress is null)
        {
            if (stores.FirstOrDefault(static x => x.Consistency == "strong") is { } strong)
            {
                return (null, $"strong store {strong.Name}: this sidecar is in a network namespace of its own (a pod's), where the workload's other replicas cannot reach it at 127.0.0.1: pass --state-address with the pod's address");
            }

            error.WriteLine("beemesh sidecar: the state stores are this pod's alone (pass --state-address with the pod's address to share them with the workload's other pods)");
        }
        else
        {
            replication = CliSupport.StateReplication(s.Agent, s.Name, s.Namespace, sidecar, stateAddress);
        }

        try
        {
            WorkloadStateApi api = await WorkloadStateApi.StartAsync(
                s.Name, stores, replication,
                StateApiListener.Bind(new IPEndPoint(IPAddress.Loopback, WorkloadStateApi.HttpPort)),
                StateApiListener.Bind(new IPEndPoint(IPAddress.Loopback, WorkloadStateApi.GrpcPort)),
                loggerFactory, TimeProvider.System, cancel,
                new Beemesh.Sidecar.State.Eventual.EventualReplicationOptions { AntiEntropyInterval = TimeSpan.FromSeconds(s.StateSync) },
                sidecar.Counters.EventualState);
            CliSupport.ReportStateReplicas("beemesh sidecar", api, error);
            return (api, null);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or SocketException
            or UnauthorizedAccessException or Beemesh.Sidecar.State.Strong.StrongStoreUnavailableException)
        {
            return (null, $"cannot serve the state API on 127.0.0.1:{WorkloadStateApi.HttpPort} and :{WorkloadStateApi.GrpcPort}: {e.Message}");
        }
    }

    private static async Task StopAsync(List<UpstreamListener> listeners, LoopbackServices? services, MeshDnsServer? dns, MeshSidecar sidecar, EventHandler refresh, WorkloadStateApi? stateApi)
    {
        if (stateApi is not null)
        {
            await stateApi.DisposeAsync();
        }

        sidecar.Directory.Changed -= refresh;
        if (dns is not null)
        {
            await dns.DisposeAsync();
        }

        if (services is not null)
        {
            await services.DisposeAsync();
        }

        foreach (UpstreamListener listener in listeners)
        {
            await listener.DisposeAsync();
        }
    }
}
