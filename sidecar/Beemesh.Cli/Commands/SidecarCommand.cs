using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Beemesh.Agent.Client;
using Beemesh.Sidecar.Mesh;
using Beemesh.Sidecar.Inbound;
using Beemesh.Sidecar.Tunnel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh sidecar --name NAME [--namespace NS] --inbound PORT [--upstream NAME.NS:PORT=LOCALPORT]...</c>:
/// the injected-container mode. The sidecar shares the pod's network namespace and has no tap: it
/// terminates inbound mTLS on PORT (authorizing every flow, continuously) and forwards to the
/// workload on localhost, and it exposes each upstream on a localhost port, carried through the mesh.
/// </summary>
public static class SidecarCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var name = new Option<string>("--name") { Description = "Workload (service account) name", Required = true };
        var ns = new Option<string>("--namespace") { Description = "Mesh namespace", DefaultValueFactory = _ => "default" };
        var inbound = new Option<int>("--inbound") { Description = "Port of the mTLS tunnel that callers reach", Required = true };
        var ports = new Option<string[]>("--port") { Description = "A workload port served to the mesh: PORT[/tcp|/http]", AllowMultipleArgumentsPerToken = false };
        var upstreams = new Option<string[]>("--upstream") { Description = "Expose a mesh service locally: NAME.NAMESPACE:PORT=LOCALPORT", AllowMultipleArgumentsPerToken = false };
        var agent = new Option<string>("--agent") { Description = "The node agent's directory", DefaultValueFactory = _ => AgentClient.DefaultAgentDirectory() };
        var meshCidr = new Option<string>("--mesh-cidr") { Description = "The agent's mesh address range", DefaultValueFactory = _ => "10.200.0.0/16" };
        var debug = new Option<bool>("--debug") { Description = "Log to stderr at debug level" };
        var dns = new Option<string?>("--dns") { Description = "Answer the pod's DNS queries on ADDRESS:PORT (not available yet: refused)" };
        var command = new Command("sidecar", "Run the sidecar next to a workload that shares its network namespace (no tap)")
        {
            name, ns, inbound, ports, upstreams, agent, meshCidr, debug, dns,
        };
        command.SetAction((parse, cancel) => parse.GetValue(dns) is { } dnsAddress
            ? RefuseDns(parse.InvocationConfiguration.Error, dnsAddress)
            : RunAsync(
            parse.GetValue(name)!, parse.GetValue(ns)!, parse.GetValue(inbound), parse.GetValue(ports) ?? [],
            parse.GetValue(upstreams) ?? [], parse.GetValue(agent)!, parse.GetValue(meshCidr)!, parse.GetValue(debug), cancel));
        return command;
    }

    /// <summary>Set by <c>beemesh inject</c> from the downward API (fieldRef metadata.name); named in the start-up line.</summary>
    public const string PodNameVariable = "BEEMESH_POD_NAME";

    // The resolver that answers mesh names with a loopback address per service in this mode is not
    // there yet. Refusing keeps a pod whose DNS points at 127.0.0.1 from starting with no resolver.
    private static Task<int> RefuseDns(TextWriter error, string address)
    {
        error.WriteLine($"beemesh sidecar: --dns {address}: the sidecar's mesh DNS resolver is not available yet; inject without --mesh-dns");
        return Task.FromResult(2);
    }

    private sealed record Upstream(string Name, int Port, int LocalPort);

    private static async Task<int> RunAsync(
        string name, string ns, int inbound, string[] portTexts, string[] upstreamTexts, string agentDir, string meshCidr, bool debug, CancellationToken cancel)
    {
        if (CliSupport.CheckWorkloadNames(name, ns) is { } badName)
        {
            Console.Error.WriteLine($"beemesh sidecar: {badName}");
            return 2;
        }

        if (inbound is < 1 or > 65535)
        {
            Console.Error.WriteLine($"beemesh sidecar: invalid --inbound {inbound}: ports are 1-65535");
            return 2;
        }

        var upstreams = new List<Upstream>();
        foreach (string text in upstreamTexts)
        {
            int eq = text.LastIndexOf('=');
            int colon = eq > 0 ? text.LastIndexOf(':', eq) : -1;
            if (colon <= 0 || !int.TryParse(text[(colon + 1)..eq], out int port) || !int.TryParse(text[(eq + 1)..], out int local)
                || port is < 1 or > 65535 || local is < 1 or > 65535)
            {
                Console.Error.WriteLine($"beemesh sidecar: invalid --upstream '{text}': expected NAME.NAMESPACE:PORT=LOCALPORT");
                return 2;
            }

            upstreams.Add(new Upstream(text[..colon], port, local));
        }

        var ports = new List<WorkloadPort>();
        foreach (string p in portTexts)
        {
            if (!CliSupport.TryParseMeshPort(p, out var port, out string? error))
            {
                Console.Error.WriteLine($"beemesh sidecar: {error}");
                return 2;
            }

            ports.Add(port!);
        }

        using var loggerFactory = CliSupport.CreateLoggerFactory(debug);
        MeshSidecar sidecar;
        try
        {
            using var startup = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            startup.CancelAfter(TimeSpan.FromSeconds(15));
            sidecar = await MeshSidecar.StartAsync(agentDir, name, ns, ports, new LocalGuestConnector(),
                new IPEndPoint(IPAddress.Loopback, inbound), null, null, meshCidr, loggerFactory, startup.Token);
        }
        catch (Exception e) when (e is HttpRequestException or AgentApiException or OperationCanceledException or InvalidOperationException or IOException)
        {
            Console.Error.WriteLine($"beemesh sidecar: cannot join the mesh through the agent at {agentDir}: {e.Message}");
            return 1;
        }

        await using (sidecar)
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
            var logger = loggerFactory.CreateLogger("beemesh.sidecar");
            var listeners = new List<TcpListener>();
            try
            {
                foreach (var u in upstreams)
                {
                    var listener = new TcpListener(IPAddress.Loopback, u.LocalPort);
                    listener.Start();
                    listeners.Add(listener);
                    _ = ServeUpstreamAsync(listener, u, sidecar, logger, stop.Token);
                }
            }
            catch (SocketException e)
            {
                Console.Error.WriteLine($"beemesh sidecar: cannot listen for an upstream: {e.Message}");
                return 1;
            }

            string pod = Environment.GetEnvironmentVariable(PodNameVariable) is { Length: > 0 } podName ? $", pod {podName}" : string.Empty;
            Console.Error.WriteLine($"beemesh sidecar: {sidecar.Workload.SpiffeId} at {sidecar.Workload.MeshAddress}, tunnel 127.0.0.1:{inbound}{pod}");
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
            }

            foreach (var l in listeners)
            {
                l.Stop();
            }

            return 0;
        }
    }

    private static async Task ServeUpstreamAsync(TcpListener listener, Upstream upstream, MeshSidecar sidecar, ILogger logger, CancellationToken cancel)
    {
        while (!cancel.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptSocketAsync(cancel);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(async () =>
            {
                socket.NoDelay = true;
                await using var local = new NetworkStream(socket, ownsSocket: true);
                try
                {
                    var address = sidecar.Directory.ResolveName(upstream.Name)
                        ?? throw new IOException($"{upstream.Name} is not a known mesh service");
                    var peer = sidecar.Directory.ResolveAddress(address)
                        ?? throw new IOException($"{upstream.Name} has no tunnel endpoint");
                    await using var tunnel = await sidecar.Pool.OpenAsync(peer, upstream.Port, cancel);
                    await StreamSplicer.SpliceAsync(local, () => StreamSplicer.ShutdownWrite(local), tunnel, tunnel.ShutdownWriteAsync, null, cancel);
                }
                catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException or ObjectDisposedException)
                {
                    logger.LogWarning("upstream {Name}:{Port} flow failed: {Error}", upstream.Name, upstream.Port, e.Message);
                    StreamSplicer.Reset(local);
                }
            }, cancel);
        }
    }
}
