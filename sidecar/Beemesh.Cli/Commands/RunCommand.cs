using System.CommandLine;
using Beemesh.Agent.Client;
using Beemesh.Sidecar.Identity;
using Beemesh.Sidecar.Mesh;
using Beemesh.Sidecar.State;
using Beemesh.Spiffe.WorkloadApi;
using Beemesh.Netstack.Dns;
using Beemesh.Netstack.Forwarding;
using Beemesh.Netstack.Link;
using Beemesh.Netstack.Stack;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh run [--mtu N] [-p HOST:GUEST]... [--ipv6] [--name NAME [--namespace NS] [--port P[/http]]... [--agent DIR]] -- CMD ARGS...</c>:
/// runs CMD in its own user, mount, PID and network namespaces whose only network is Beemesh's
/// userland stack (like <c>pasta -- CMD</c>), and exits with CMD's status; CMD dies with us. The
/// agent's state directory is hidden from CMD. With <c>--name</c> the workload joins the mesh as
/// <c>spiffe://TD/ns/NS/sa/NAME</c>: mesh names resolve, mesh connections go through mTLS tunnels,
/// inbound callers are authorized by the agent's policies, and CMD finds its own SVID through
/// <c>SPIFFE_ENDPOINT_SOCKET</c> (a <see cref="WorkloadApiRelay"/> shown in the state directory's place).
/// A named workload also gets Dapr's state API inside its own namespace, on 127.0.0.1:3500 (HTTP)
/// and 127.0.0.1:50001 (gRPC), with the stores of <c>--state NAME[=eventual|strong]</c> and of the
/// Dapr <c>Component</c> files of <c>--resources-path</c> (default <c>statestore</c>, eventual) and
/// its keys scoped to its name; CMD finds it through <c>DAPR_HTTP_PORT</c>,
/// <c>DAPR_GRPC_PORT</c> and the matching <c>DAPR_*_ENDPOINT</c>.
/// </summary>
public static class RunCommand
{
    /// <summary>
    /// Builds the command; <paramref name="environment"/> reads its environment variables
    /// (<see cref="Environment.GetEnvironmentVariable(string)"/> when null).
    /// </summary>
    public static Command Create(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var mtu = new Option<int>("--mtu", "-m") { Description = "MTU of the guest interface (576-65521)", DefaultValueFactory = _ => 1500 };
        var publish = new Option<string[]>("--publish", "-p") { Description = "Publish a guest port: [HOSTADDR:]HOSTPORT:GUESTPORT[/udp]", AllowMultipleArgumentsPerToken = false };
        var ipv6 = new Option<bool>("--ipv6", "-6") { Description = "Also give the guest IPv6 (fd00::/64)" };
        var noOffload = new Option<bool>("--no-offload") { Description = "Do not use the tap's segmentation offload" };
        var verbose = new Option<bool>("--debug") { Description = "Log the stack's decisions to stderr" };
        var name = new Option<string?>("--name") { Description = "Join the mesh as this workload (service account) name" };
        var ns = new Option<string>("--namespace") { Description = "Mesh namespace of the workload", DefaultValueFactory = _ => "default" };
        var ports = new Option<string[]>("--port") { Description = "A port the workload serves to the mesh: PORT[/tcp|/http]", AllowMultipleArgumentsPerToken = false };
        var agent = new Option<string>("--agent") { Description = "The node agent's directory", DefaultValueFactory = _ => AgentClient.DefaultAgentDirectory() };
        var meshCidr = new Option<string>("--mesh-cidr") { Description = "The agent's mesh address range", DefaultValueFactory = _ => "10.200.0.0/16" };
        var state = new Option<string[]>("--state") { Description = "A Dapr state store for the workload: NAME[=eventual] (default statestore=eventual; needs --name)", AllowMultipleArgumentsPerToken = false };
        var resources = CliSupport.ResourcesPathOption();
        var stateSync = new Option<double>("--state-sync") { Description = "Seconds between the anti-entropy rounds of eventual stores among the workload's replicas (default 1; under the 1-hour tombstone grace)", DefaultValueFactory = _ => 1.0 };
        var command = new Argument<string[]>("command") { Description = "The command to run and its arguments (after --)", Arity = ArgumentArity.OneOrMore };
        var run = new Command("run", "Run a command in its own network namespace, networked by Beemesh's userland stack")
        {
            mtu, publish, ipv6, noOffload, verbose, name, ns, ports, agent, meshCidr, state, resources, stateSync, command,
        };
        run.SetAction((parse, cancel) => ExecuteAsync(
            new RunSettings(
                parse.GetValue(mtu),
                parse.GetValue(publish) ?? [],
                parse.GetValue(ipv6),
                !parse.GetValue(noOffload),
                parse.GetValue(verbose),
                parse.GetValue(name),
                parse.GetValue(ns)!,
                parse.GetValue(ports) ?? [],
                parse.GetValue(agent)!,
                parse.GetValue(meshCidr)!,
                parse.GetValue(state) ?? [],
                parse.GetValue(resources) ?? [],
                parse.GetValue(stateSync),
                parse.GetValue(command) ?? [],
                environment(TunnelKeepAlive.Variable)),
            parse.InvocationConfiguration.Error,
            cancel));
        return run;
    }

    private sealed record RunSettings(
        int Mtu, string[] Publish, bool Ipv6, bool Offload, bool Debug, string? Name, string Namespace, string[] Ports,
        string Agent, string MeshCidr, string[] State, string[] Resources, double StateSync, string[] Command, string? KeepAlive);

    private static async Task<int> ExecuteAsync(RunSettings s, TextWriter error, CancellationToken cancel)
    {
        if (s.Mtu is < 576 or > 65521)
        {
            error.WriteLine($"beemesh run: invalid MTU {s.Mtu}: must be between 576 and 65521");
            return 2;
        }

        var mappings = new List<PortMapping>();
        foreach (string p in s.Publish)
        {
            if (!PortMapping.TryParse(p, out var mapping, out string? reason))
            {
                error.WriteLine($"beemesh run: {reason}");
                return 2;
            }

            mappings.Add(mapping!);
        }

        var meshPorts = new List<WorkloadPort>();
        foreach (string p in s.Ports)
        {
            if (!CliSupport.TryParseMeshPort(p, out var port, out string? reason))
            {
                error.WriteLine($"beemesh run: {reason}");
                return 2;
            }

            meshPorts.Add(port!);
        }

        if (s.Name is null && s.Ports.Length > 0)
        {
            error.WriteLine("beemesh run: --port needs --name (ports are served to the mesh)");
            return 2;
        }

        if (s.Name is not null && CliSupport.CheckWorkloadNames(s.Name, s.Namespace) is { } badName)
        {
            error.WriteLine($"beemesh run: {badName}");
            return 2;
        }

        // The tunnel keep-alive is a mesh workload's (its sidecar's tunnels); checked before anything starts.
        if (s.Name is not null && CliSupport.CheckTunnelKeepAlive(s.KeepAlive) is { } badKeepAlive)
        {
            error.WriteLine($"beemesh run: {badKeepAlive}");
            return 2;
        }

        if (s.Name is null && (s.State.Length > 0 || s.Resources.Length > 0))
        {
            error.WriteLine($"beemesh run: {(s.State.Length > 0 ? "--state" : "--resources-path")} needs --name (keys are scoped to the workload's name)");
            return 2;
        }

        if (CliSupport.CheckStateSync(s.StateSync) is { } badSync)
        {
            error.WriteLine($"beemesh run: {badSync}");
            return 2;
        }

        var stores = new List<StateStoreSpec>();
        if (s.Name is not null)
        {
            if (CliSupport.ResolveStateStores("beemesh run", s.State, s.Resources, s.Name, s.Namespace, error) is not { } resolved)
            {
                return 2;
            }

            stores = resolved;
        }

        if (s.Name is not null)
        {
            // The sidecar's first handshake needs the platform's certificate stores, whose first load
            // is slow: it runs while the guest and the sidecar are set up (see SpiffeTls).
            _ = Beemesh.Spiffe.X509.SpiffeTls.PreloadPlatformCertificateStores();
        }

        // Logs go to stderr: stdout belongs to the command being run.
        using var loggerFactory = CliSupport.CreateLoggerFactory(s.Debug);
        var logger = loggerFactory.CreateLogger("beemesh.run");
        var options = new StackOptions { Mtu = s.Mtu, EnableIpv6 = s.Ipv6, DnsUpstream = DnsUpstreamSelector.SelectFromEnvironment() };

        // The command shares the host's files, but the host's resolver is not reachable from its
        // namespace: it sees a resolv.conf naming the stack's DNS address (and, in the mesh, the
        // cluster search domains, so "api" and "api.default" resolve as in Kubernetes).
        // In a directory of our own (mkdtemp, mode 0700): a predictable name in the shared temp
        // directory could be a symlink planted by another user, and writing it would clobber its target.
        string resolvDirectory = Directory.CreateTempSubdirectory("beemesh-resolv-").FullName;
        string resolvConf = Path.Combine(resolvDirectory, "resolv.conf");
        File.WriteAllText(resolvConf,
            $"nameserver {options.Dns}\n" + (s.Ipv6 ? $"nameserver {options.Ipv6Dns}\n" : string.Empty) +
            (s.Name is not null ? $"search {s.Namespace}.svc.cluster.local svc.cluster.local cluster.local\n" : string.Empty));
        // The agent's state directory (CA key, admin socket) is hidden from the command. A mesh
        // workload sees our Workload API relay's directory in its place, so the one file there is
        // agent.sock, named by SPIFFE_ENDPOINT_SOCKET.
        string agentDirectory = Path.GetFullPath(s.Agent);
        bool hideAgent = Directory.Exists(agentDirectory);
        string? relayDirectory = null;
        WorkloadApiRelay? relay = null;
        int helperPid = 0;
        var environment = new Dictionary<string, string>();
        if (s.Name is not null && hideAgent)
        {
            try
            {
                relayDirectory = CreateRelayDirectory(agentDirectory);
                string upstream = WorkloadApiEndpoint.FromEnvironment() ?? Path.Combine(agentDirectory, "agent.sock");
                relay = WorkloadApiRelay.Start(
                    Path.Combine(relayDirectory, "agent.sock"),
                    upstream,
                    pid =>
                    {
                        int helper = Volatile.Read(ref helperPid);
                        return helper > 0 && WorkloadApiRelay.IsDescendantOf(pid, helper);
                    },
                    loggerFactory.CreateLogger("beemesh.workload-api-relay"));
                environment[WorkloadApiEndpoint.EnvironmentVariable] = "unix://" + Path.Combine(agentDirectory, "agent.sock");
                foreach (var (key, value) in WorkloadStateApi.Environment(s.Name))
                {
                    environment[key] = value;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
            {
                Console.Error.WriteLine($"beemesh run: cannot create the workload's Workload API socket: {e.Message}");
                DeleteRelayDirectory(relayDirectory);
                return 1;
            }
        }

        TapRunner runner;
        try
        {
            runner = TapRunner.Start(
                new TapRunRequest
                {
                    Command = s.Command,
                    Mtu = s.Mtu,
                    Ipv6 = s.Ipv6,
                    VnetHeader = s.Offload,
                    ResolvConf = resolvConf,
                    Address = $"{options.Guest}/{options.PrefixLength}",
                    Gateway = options.Gateway.ToString(),
                    HideDirectory = hideAgent ? agentDirectory : null,
                    HideDirectoryWith = relayDirectory,
                    Environment = environment,
                    // The state API listens inside the workload's namespace: its loopback is not ours.
                    ListenPorts = relay is not null ? [WorkloadStateApi.HttpPort, WorkloadStateApi.GrpcPort] : [],
                },
                TimeSpan.FromSeconds(10));
            Volatile.Write(ref helperPid, runner.Process.Id);
        }
        catch (TapOpenException e)
        {
            Console.Error.WriteLine($"beemesh run: {e.Message}");
            if (relay is not null)
            {
                await relay.DisposeAsync();
            }

            DeleteRelayDirectory(relayDirectory);
            return 1;
        }
        finally
        {
            // The bind mount holds the file open; the name is not needed any more.
            Directory.Delete(resolvDirectory, recursive: true);
        }

        try
        {
            return await RunAsync(s, runner, options, mappings, meshPorts, relay is not null ? stores : [], loggerFactory, logger, cancel);
        }
        finally
        {
            if (relay is not null)
            {
                await relay.DisposeAsync();
            }

            DeleteRelayDirectory(relayDirectory);
        }
    }

    /// <summary>
    /// A private directory for the relay's socket: STATE/sidecars/PID-RANDOM (mode 0700) when the
    /// state directory is ours to write, else a private temporary directory. Directories left by
    /// runs whose process is gone are removed on the way.
    /// </summary>
    private static string CreateRelayDirectory(string agentDirectory)
    {
        string parent = Path.Combine(agentDirectory, "sidecars");
        try
        {
            Directory.CreateDirectory(parent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            foreach (string stale in Directory.EnumerateDirectories(parent))
            {
                string name = Path.GetFileName(stale);
                int dash = name.IndexOf('-', StringComparison.Ordinal);
                if (dash > 0 && int.TryParse(name.AsSpan(0, dash), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid) &&
                    !Directory.Exists($"/proc/{pid}"))
                {
                    DeleteRelayDirectory(stale);
                }
            }

            // Short: the socket path inside must fit in sun_path (108 bytes).
            string random = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6));
            string directory = Path.Combine(parent, $"{Environment.ProcessId}-{random}");
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            return directory;
        }
        catch (UnauthorizedAccessException)
        {
            // CreateTempSubdirectory uses mkdtemp: mode 0700.
            return Directory.CreateTempSubdirectory("beemesh-relay-").FullName;
        }
    }

    private static void DeleteRelayDirectory(string? directory)
    {
        if (directory is null)
        {
            return;
        }

        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // left for the next run's sweep
        }
    }

    private static async Task<int> RunAsync(
        RunSettings s, TapRunner runner, StackOptions options, List<PortMapping> mappings, List<WorkloadPort> meshPorts,
        List<StateStoreSpec> stores, ILoggerFactory loggerFactory, ILogger logger, CancellationToken cancel)
    {
        using (runner)
        {
            using var stack = new NetworkStack(options, new TapLink(runner.Tap), logger: logger);
            foreach (var m in mappings)
            {
                try
                {
                    stack.PortForwards.Add(m.Protocol, m.HostAddress, m.HostPort, options.Guest, m.GuestPort);
                }
                catch (PortForwardException e)
                {
                    Console.Error.WriteLine($"beemesh run: cannot publish {m.HostAddress}:{m.HostPort}: {e.Message}");
                    return 1;
                }
            }

            MeshSidecar? sidecar = null;
            if (s.Name is not null)
            {
                try
                {
                    using var startup = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                    startup.CancelAfter(TimeSpan.FromSeconds(15));
                    sidecar = await MeshSidecar.StartAsync(s.Agent, s.Name, s.Namespace, meshPorts, stack, options.DnsUpstream!, s.MeshCidr, loggerFactory, startup.Token);
                }
                catch (Exception e) when (e is HttpRequestException or AgentApiException or OperationCanceledException or InvalidOperationException)
                {
                    Console.Error.WriteLine($"beemesh run: cannot join the mesh through the agent at {s.Agent}: {e.Message}");
                    return 1;
                }

                options.DnsUpstream = sidecar.DnsEndPoint;
                Console.Error.WriteLine($"beemesh run: {sidecar.Workload.SpiffeId} at {sidecar.Workload.MeshAddress}");
            }

            WorkloadStateApi? stateApi = null;
            if (stores.Count > 0)
            {
                try
                {
                    // Replicas of one workload (same name and namespace) on this node find each
                    // other in the agent's state directory, hidden from the workloads themselves
                    // (strong stores join a Raft group there, eventual ones replicate by anti-entropy);
                    // eventual replicas also reach one replica on each other node that runs the workload.
                    var strong = sidecar is null ? null : CliSupport.StateReplication(s.Agent, s.Name!, s.Namespace, sidecar);
                    stateApi = await WorkloadStateApi.StartAsync(
                        s.Name!, stores, strong,
                        StateApiListener.FromHandle((ulong)runner.TakeListener(WorkloadStateApi.HttpPort)),
                        StateApiListener.FromHandle((ulong)runner.TakeListener(WorkloadStateApi.GrpcPort)),
                        loggerFactory, TimeProvider.System, cancel,
                        new Beemesh.Sidecar.State.Eventual.EventualReplicationOptions { AntiEntropyInterval = TimeSpan.FromSeconds(s.StateSync) },
                        sidecar?.Counters.EventualState);
                    CliSupport.ReportStateReplicas("beemesh run", stateApi, Console.Error);
                }
                catch (Exception e) when (e is IOException or InvalidOperationException or System.Net.Sockets.SocketException
                    or UnauthorizedAccessException or Beemesh.Sidecar.State.Strong.StrongStoreUnavailableException)
                {
                    Console.Error.WriteLine($"beemesh run: cannot serve the state API: {e.Message}");
                    if (sidecar is not null)
                    {
                        await sidecar.DisposeAsync();
                    }

                    return 1;
                }
            }

            // TERM, INT, HUP, QUIT, USR1 and USR2 go to the command (as with pasta): we exit when it
            // does, with its status. In place before the command is released, so a signal sent as
            // soon as it runs is never met by the default action (which would end this process).
            int child = runner.Process.Id;
            var forwarded = new List<System.Runtime.InteropServices.PosixSignalRegistration>();
            foreach (var (signal, number) in ForwardedSignals)
            {
                forwarded.Add(System.Runtime.InteropServices.PosixSignalRegistration.Create(signal, c =>
                {
                    c.Cancel = true;
                    Beemesh.Netstack.Interop.Sys.kill(child, number);
                }));
            }

            using var unregister = new SignalRegistrations(forwarded);
            var loop = new Thread(stack.Run) { IsBackground = true, Name = "beemesh-netstack" };
            loop.Start();
            runner.Release();

            // --debug: what the process's memory is made of, every 10 s (scripts/bench-mem reads it).
            using ITimer? memoryLog = s.Debug ? StartMemoryLog(loggerFactory.CreateLogger("beemesh.memory")) : null;
            // Start-up garbage (TLS handshakes, the agent's first answers, Kestrel's start) would stay
            // in the heap until the first collection, which an idle sidecar may not reach for hours:
            // collect it once and give the freed memory back (loadtests/reports/memory.md). Only now,
            // with the signal handlers in place: the command already runs.
            int collections = await CollectStartupGarbageAsync();
            logger.LogDebug("start-up garbage collected ({Collections} collections)", collections);
            int status = await runner.WaitForExitAsync(CancellationToken.None);
            if (stateApi is not null)
            {
                await stateApi.DisposeAsync();
            }

            if (sidecar is not null)
            {
                // Leave the mesh first (the agent forgets us); live tunnels are cut, not drained:
                // the workload that used them is gone.
                try
                {
                    await sidecar.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(3));
                }
                catch (TimeoutException)
                {
                    logger.LogWarning("the sidecar did not shut down within 3 s");
                }
            }

            stack.Stop();
            loop.Join(TimeSpan.FromSeconds(2));
            if (s.Debug)
            {
                Console.Error.Write(stack.Counters.ToPrometheus());
            }

            return status;
        }
    }

    /// <summary>
    /// Collects start-up garbage and gives the freed memory back; returns the collections made. A
    /// buffer pinned at that instant by a write in flight (the console logger's, a socket's) keeps
    /// the whole region it lies in, megabytes of garbage, in gen0; then the collection is made again
    /// once that write is over (at most three in all).
    /// </summary>
    private static async Task<int> CollectStartupGarbageAsync()
    {
        const long StrandedBytes = 256 * 1024;
        for (int collections = 1; ; collections++)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            if (collections == 3 || GC.GetGCMemoryInfo().GenerationInfo[0].FragmentationAfterBytes < StrandedBytes)
            {
                return collections;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(20), TimeProvider.System);
        }
    }

    private static ITimer StartMemoryLog(ILogger logger) => TimeProvider.System.CreateTimer(
        static state => ((ILogger)state!).LogDebug("memory: {Memory}", Beemesh.Sidecar.Telemetry.ProcessMemory.Current()),
        logger, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10));

    /// <summary>The signals passed on to the command, with their Linux numbers.</summary>
    private static readonly (System.Runtime.InteropServices.PosixSignal Signal, int Number)[] ForwardedSignals =
    [
        (System.Runtime.InteropServices.PosixSignal.SIGTERM, 15),
        (System.Runtime.InteropServices.PosixSignal.SIGINT, 2),
        (System.Runtime.InteropServices.PosixSignal.SIGHUP, 1),
        (System.Runtime.InteropServices.PosixSignal.SIGQUIT, 3),
        ((System.Runtime.InteropServices.PosixSignal)10, 10), // SIGUSR1, by its raw number
        ((System.Runtime.InteropServices.PosixSignal)12, 12), // SIGUSR2
    ];

    private sealed class SignalRegistrations(List<System.Runtime.InteropServices.PosixSignalRegistration> registrations) : IDisposable
    {
        public void Dispose()
        {
            foreach (var registration in registrations)
            {
                registration.Dispose();
            }
        }
    }
}
