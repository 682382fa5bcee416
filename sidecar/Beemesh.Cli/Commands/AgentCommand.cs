using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;
using Beemesh.Agent.Mesh;
using Beemesh.Identity.Join;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh agent [--state-dir DIR] [--trust-domain TD] [--mesh-cidr CIDR] [--mesh-block-prefix N] [--svid-ttl DURATION]
/// [--node-name N --listen IP[:PORT]] [--join IP:PORT[,...] --token T] [--node-cert-renew-after SHARE] [--node-cert-retry DURATION]</c>: runs the node agent (CA,
/// SPIFFE Workload API, admin API, and with <c>--listen</c> the node port) until SIGINT or SIGTERM.
/// </summary>
public static class AgentCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var stateDir = new Option<string>("--state-dir") { Description = "Directory for the CA and the sockets", DefaultValueFactory = _ => AgentClient.DefaultAgentDirectory() };
        var trustDomain = new Option<string>("--trust-domain") { Description = "Trust domain of the agent's CA", DefaultValueFactory = _ => "example.org" };
        var meshCidr = new Option<string>("--mesh-cidr") { Description = "IPv4 range mesh addresses are taken from", DefaultValueFactory = _ => "10.200.0.0/16" };
        var meshBlockPrefix = new Option<int>("--mesh-block-prefix")
        {
            Description = "With --listen: prefix length of the block of --mesh-cidr this node claims for its workloads' addresses (the same on every node; a collision moves the node with the higher id)",
            DefaultValueFactory = _ => Beemesh.Agent.Mesh.MeshBlockPlan.DefaultBlockPrefix,
        };
        var svidTtl = new Option<string>("--svid-ttl") { Description = "Lifetime of issued X509-SVIDs, e.g. 30s, 10m, 1h (rotated at half-life)", DefaultValueFactory = _ => "1h" };
        var debug = new Option<bool>("--debug") { Description = "Log the agent's decisions to stderr" };
        var nodeName = new Option<string?>("--node-name") { Description = "This node's name among the nodes of the trust domain (a DNS label)" };
        var listen = new Option<string?>("--listen") { Description = $"IP[:PORT] of the node port for joins and overlay links (default port {NodeListener.DefaultPort})" };
        var tunnelPort = new Option<int>("--tunnel-port") { Description = "Port of the node's tunnel port on the --listen address (TLS routed by SNI to this node's workloads)", DefaultValueFactory = _ => Beemesh.Agent.Tunnel.SniTunnelRouter.DefaultPort };
        var quicPort = new Option<string>("--quic-port")
        {
            Description = "With --listen: UDP port of the node's QUIC tunnel endpoint (used when libmsquic is present): auto (the --tunnel-port number), 0-65535, or off",
            DefaultValueFactory = _ => "auto",
        };
        var join = new Option<string?>("--join") { Description = "IP:PORT[,IP:PORT...] of node ports of the mesh to join" };
        var routeLease = new Option<string>("--route-lease") { Description = "How long this node's routes stay valid unrenewed, e.g. 90s (renewed every third)", DefaultValueFactory = _ => "90s" };
        var token = new Option<string?>("--token") { Description = "One-time join token from 'beemesh token create' (first start only)" };
        var renewAfter = new Option<string?>("--node-cert-renew-after")
        {
            Description = "With --listen: share of the node certificates' lifetime after which the node renews them, between 0 and 1 (default 0.667: about 8 months of a year)",
        };
        var renewRetry = new Option<string?>("--node-cert-retry") { Description = "With --listen: wait after a failed node certificate renewal before the next attempt, e.g. 5m (default 5m)" };
        var agent = new Command("agent", "Run the node agent: CA, SPIFFE Workload API and admin API")
        {
            stateDir, trustDomain, meshCidr, meshBlockPrefix, svidTtl, debug, nodeName, listen, tunnelPort, quicPort, join, token, routeLease, renewAfter, renewRetry,
        };
        agent.SetAction(async (parse, cancellationToken) =>
        {
            string ttlText = parse.GetValue(svidTtl)!;
            if (!TryParseDuration(ttlText, out TimeSpan ttl))
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"beemesh agent: invalid --svid-ttl '{ttlText}': expected a number with a unit s, m or h (e.g. 30s, 10m, 1h)").ConfigureAwait(false);
                return 2;
            }

            if (Identity.Authority.CertificateAuthority.CheckX509SvidTtl(ttl) is { } problem)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"beemesh agent: invalid --svid-ttl '{ttlText}': {problem}").ConfigureAwait(false);
                return 2;
            }

            string leaseText = parse.GetValue(routeLease)!;
            if (!TryParseDuration(leaseText, out TimeSpan lease) || lease < TimeSpan.FromSeconds(3))
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"beemesh agent: invalid --route-lease '{leaseText}': expected a duration of at least 3s (e.g. 90s)").ConfigureAwait(false);
                return 2;
            }

            var options = new AgentOptions
            {
                RouteLease = lease,
                StateDirectory = parse.GetValue(stateDir)!,
                TrustDomain = parse.GetValue(trustDomain)!,
                MeshCidr = parse.GetValue(meshCidr)!,
                MeshBlockPrefix = parse.GetValue(meshBlockPrefix),
                X509SvidTtl = ttl,
                NodeName = parse.GetValue(nodeName),
                JoinToken = parse.GetValue(token),
            };
            if (parse.GetValue(renewAfter) is string shareText)
            {
                if (!double.TryParse(shareText, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out double share)
                    || Identity.Authority.NodeCertificateLifetime.CheckRenewAfter(share) is not null)
                {
                    await parse.InvocationConfiguration.Error.WriteLineAsync($"beemesh agent: invalid --node-cert-renew-after '{shareText}': expected a share of the lifetime between 0 and 1 exclusive (e.g. 0.667)").ConfigureAwait(false);
                    return 2;
                }

                options.NodeCertificateRenewAfter = share;
            }

            if (parse.GetValue(renewRetry) is string retryText)
            {
                if (!TryParseDuration(retryText, out TimeSpan retry))
                {
                    await parse.InvocationConfiguration.Error.WriteLineAsync($"beemesh agent: invalid --node-cert-retry '{retryText}': expected a duration of at least 1s (e.g. 5m)").ConfigureAwait(false);
                    return 2;
                }

                options.NodeCertificateRetryInterval = retry;
            }

            int tunnelPortValue = parse.GetValue(tunnelPort);
            if (tunnelPortValue is < 0 or > 65535)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"beemesh agent: invalid --tunnel-port '{tunnelPortValue}': expected 0-65535").ConfigureAwait(false);
                return 2;
            }

            options.TunnelPort = tunnelPortValue;
            string quicText = parse.GetValue(quicPort)!;
            if (quicText == "off")
            {
                options.Quic = false;
            }
            else if (quicText != "auto")
            {
                if (!int.TryParse(quicText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int quicPortValue) || quicPortValue > 65535)
                {
                    await parse.InvocationConfiguration.Error.WriteLineAsync($"beemesh agent: invalid --quic-port '{quicText}': expected auto, off or 0-65535").ConfigureAwait(false);
                    return 2;
                }

                options.QuicPort = quicPortValue;
            }

            if (parse.GetValue(listen) is string listenText)
            {
                if (!IPEndPoint.TryParse(listenText, out IPEndPoint? endpoint))
                {
                    await parse.InvocationConfiguration.Error.WriteLineAsync($"beemesh agent: invalid --listen '{listenText}': expected IP[:PORT]").ConfigureAwait(false);
                    return 2;
                }

                options.Listen = endpoint.Port == 0 && !listenText.EndsWith(":0", StringComparison.Ordinal) ? new IPEndPoint(endpoint.Address, NodeListener.DefaultPort) : endpoint;
            }

            if (parse.GetValue(join) is string joinText)
            {
                try
                {
                    options.Join = JoinClient.ParseEndpoints(joinText, NodeListener.DefaultPort);
                }
                catch (FormatException e)
                {
                    await parse.InvocationConfiguration.Error.WriteLineAsync($"beemesh agent: invalid --join '{joinText}': {e.Message}").ConfigureAwait(false);
                    return 2;
                }
            }

            return await RunAsync(
                parse,
                options,
                parse.GetValue(debug),
                cancellationToken).ConfigureAwait(false);
        });
        return agent;
    }

    /// <summary>
    /// Parses a duration written as a positive whole number followed by <c>s</c>, <c>m</c> or <c>h</c>
    /// (<c>30s</c>, <c>10m</c>, <c>1h</c>); units may be combined largest first (<c>1h30m</c>).
    /// </summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        ReadOnlySpan<char> rest = text.AsSpan().Trim();
        int lastRank = int.MaxValue;
        if (rest.IsEmpty)
        {
            return false;
        }

        while (!rest.IsEmpty)
        {
            int digits = 0;
            while (digits < rest.Length && char.IsAsciiDigit(rest[digits]))
            {
                digits++;
            }

            if (digits == 0 || digits == rest.Length || digits > 9)
            {
                return false;
            }

            long value = long.Parse(rest[..digits], System.Globalization.CultureInfo.InvariantCulture);
            (int rank, TimeSpan unit) = rest[digits] switch
            {
                'h' => (3, TimeSpan.FromHours(1)),
                'm' => (2, TimeSpan.FromMinutes(1)),
                's' => (1, TimeSpan.FromSeconds(1)),
                _ => (0, TimeSpan.Zero),
            };
            if (rank == 0 || rank >= lastRank)
            {
                return false;
            }

            lastRank = rank;
            duration += unit * value;
            rest = rest[(digits + 1)..];
        }

        return duration > TimeSpan.Zero;
    }

    /// <summary>The <c>--agent DIR</c> option every agent client command takes.</summary>
    internal static Option<string> AgentDirectoryOption() =>
        new("--agent") { Description = "State directory of the agent to talk to", DefaultValueFactory = _ => AgentClient.DefaultAgentDirectory() };

    /// <summary>
    /// Runs <paramref name="action"/> against the agent in <paramref name="directory"/>, turning the
    /// failures a user can cause into one line on stderr (plus the agent's itemized reasons) and exit 1.
    /// </summary>
    internal static async Task<int> WithClientAsync(ParseResult parse, string commandName, string directory, Func<AgentClient, TextWriter, Task<int>> action)
    {
        TextWriter output = parse.InvocationConfiguration.Output;
        TextWriter error = parse.InvocationConfiguration.Error;
        using var client = new AgentClient(directory);
        try
        {
            return await action(client, output).ConfigureAwait(false);
        }
        catch (AgentApiException e)
        {
            await error.WriteLineAsync($"beemesh {commandName}: {e.Message}").ConfigureAwait(false);
            foreach (string detail in e.Details)
            {
                await error.WriteLineAsync("  " + detail).ConfigureAwait(false);
            }

            return 1;
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException or IOException || e.HttpRequestError == HttpRequestError.ConnectionError)
        {
            await error.WriteLineAsync($"beemesh {commandName}: cannot reach the agent at {client.AdminSocketPath} ({e.InnerException?.Message ?? e.Message}); is 'beemesh agent' running?").ConfigureAwait(false);
            return 1;
        }
    }

    private static async Task<int> RunAsync(ParseResult parse, AgentOptions options, bool debug, CancellationToken cancellationToken)
    {
        TextWriter output = parse.InvocationConfiguration.Output;
        TextWriter error = parse.InvocationConfiguration.Error;
        using var loggerFactory = CliSupport.CreateLoggerFactory(debug);

        // SIGTERM (systemd, podman, kill) stops the agent as cleanly as Ctrl+C does.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });

        AgentHost host;
        try
        {
            host = await AgentHost.StartAsync(options, loggerFactory, stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException or JoinException or FormatException)
        {
            await error.WriteLineAsync($"beemesh agent: {e.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (OperationCanceledException)
        {
            return 130;
        }

        await using (host.ConfigureAwait(false))
        {
            await output.WriteLineAsync($"trust domain: {host.Authority.TrustDomain}").ConfigureAwait(false);
            await output.WriteLineAsync($"workload API: unix://{host.WorkloadApiSocketPath}").ConfigureAwait(false);
            await output.WriteLineAsync($"admin API:    unix://{host.AdminSocketPath}").ConfigureAwait(false);
            if (host.Node is { } node)
            {
                await output.WriteLineAsync($"node:         {node.NodeName} ({(host.Authority.HoldsRoot ? "holds the trust domain's root" : "joined")})").ConfigureAwait(false);
            }

            if (host.NodeEndPoint is { } nodePort)
            {
                await output.WriteLineAsync($"node port:    {nodePort}").ConfigureAwait(false);
                await output.WriteLineAsync($"mesh block:   {host.MeshBlock?.ToString() ?? "none"} of {host.Options.MeshCidr}").ConfigureAwait(false);
                await output.WriteLineAsync($"tunnel port:  tcp {host.TunnelEndPoint}").ConfigureAwait(false);
                await output.WriteLineAsync(host.QuicRouter is { } quic ? $"quic tunnel:  udp {quic.Endpoint} (advertised as h3)" : $"quic tunnel:  off: {host.QuicOffReason}").ConfigureAwait(false);
            }

            await output.WriteLineAsync(host.RestoredState).ConfigureAwait(false);
            await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        return 0;
    }
}
