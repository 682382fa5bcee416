using System.CommandLine;
using System.Reflection;
using Beemesh.Inject;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh inject -f FILE|-</c>: writes the Kubernetes manifests of FILE to stdout with a
/// <c>beemesh-sidecar</c> container added to every pod template (see <see cref="SidecarInjector"/>).
/// Bad input gets one line on stderr with its position and exit code 2; nothing is written then.
/// </summary>
public static class InjectCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var defaults = new InjectOptions();
        var file = new Option<string>("--filename", "-f") { Description = "Kubernetes YAML to inject ('-' for stdin)", Required = true };
        var image = new Option<string>("--image") { Description = "Image of the sidecar container", DefaultValueFactory = _ => defaults.Image };
        var ns = new Option<string>("--namespace", "-n") { Description = "Namespace of objects that name none", DefaultValueFactory = _ => defaults.DefaultNamespace };
        var inbound = new Option<int>("--inbound") { Description = "Port in the pod on which the sidecar takes the mesh's tunnel", DefaultValueFactory = _ => defaults.InboundPort };
        var agentDir = new Option<string>("--agent-dir") { Description = "The node agent's directory on the host (a hostPath volume)", DefaultValueFactory = _ => defaults.AgentDirectory };
        var meshDns = new Option<bool>("--mesh-dns") { Description = "Point the pod's DNS at the sidecar's resolver on 127.0.0.1, which answers mesh names" };
        var dnsUpstream = new Option<string>("--dns-upstream")
        {
            Description = "With --mesh-dns: the resolver for other names, ADDRESS[:PORT] (slirp4netns's 10.0.2.3; in a cluster, its DNS service)",
            DefaultValueFactory = _ => defaults.DnsUpstream,
        };
        var sidecarUser = new Option<long>("--sidecar-uid")
        {
            Description = "uid of the sidecar container: the agent's owner (0 maps to the user running rootless podman)",
            DefaultValueFactory = _ => defaults.SidecarUser,
        };
        var nodeLoopback = new Option<string?>("--node-loopback")
        {
            Description = "Where pods reach the node's loopback (10.0.2.2 behind slirp4netns with allow_host_loopback=true), for tunnels to this node's workloads",
        };
        var command = new Command("inject", "Add the beemesh sidecar container to the pods of Kubernetes manifests")
        {
            file, image, ns, inbound, agentDir, meshDns, dnsUpstream, sidecarUser, nodeLoopback,
        };
        command.SetAction(async (parse, cancel) =>
        {
            TextWriter error = parse.InvocationConfiguration.Error;
            string path = parse.GetValue(file)!;
            string yaml;
            try
            {
                yaml = path == "-" ? await Console.In.ReadToEndAsync(cancel).ConfigureAwait(false) : await File.ReadAllTextAsync(path, cancel).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                await error.WriteLineAsync($"beemesh inject: cannot read {path}: {e.Message}").ConfigureAwait(false);
                return 1;
            }

            var options = new InjectOptions
            {
                Image = parse.GetValue(image)!,
                DefaultNamespace = parse.GetValue(ns)!,
                InboundPort = parse.GetValue(inbound),
                AgentDirectory = parse.GetValue(agentDir)!,
                MeshDns = parse.GetValue(meshDns),
                DnsUpstream = parse.GetValue(dnsUpstream)!,
                SidecarUser = parse.GetValue(sidecarUser),
                NodeLoopback = parse.GetValue(nodeLoopback),
                Version = AnnotationVersion(),
            };
            string result;
            try
            {
                result = SidecarInjector.Inject(yaml, options);
            }
            catch (ManifestException e)
            {
                string where = path == "-" ? "<stdin>" : path;
                await error.WriteLineAsync($"beemesh inject: {where}:{e.Line}:{e.Column}: {e.Message}").ConfigureAwait(false);
                return 2;
            }
            catch (ArgumentException e)
            {
                await error.WriteLineAsync($"beemesh inject: {e.Message.Replace(" (Parameter 'options')", string.Empty, StringComparison.Ordinal)}").ConfigureAwait(false);
                return 2;
            }

            await parse.InvocationConfiguration.Output.WriteAsync(result).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    // The CLI's version without build metadata ("1.0.0", not "1.0.0+abcdef..."), short enough for an annotation.
    private static string AnnotationVersion()
    {
        string version = typeof(InjectCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "1";
        int plus = version.IndexOf('+', StringComparison.Ordinal);
        version = plus > 0 ? version[..plus] : version;
        return version.Length is > 0 and <= SidecarInjector.MaxAnnotationValueLength ? version : "1";
    }
}
