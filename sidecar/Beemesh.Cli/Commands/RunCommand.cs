using System.CommandLine;
using System.Net;
using Beemesh.Netstack.Dns;
using Beemesh.Netstack.Forwarding;
using Beemesh.Netstack.Link;
using Beemesh.Netstack.Stack;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh run [--mtu N] [-p HOST:GUEST]... [--ipv6] -- CMD ARGS...</c>: runs CMD in a new user
/// and network namespace whose only network is Beemesh's userland stack (like <c>pasta -- CMD</c>),
/// and exits with CMD's status.
/// </summary>
public static class RunCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var mtu = new Option<int>("--mtu", "-m") { Description = "MTU of the guest interface (576-65521)", DefaultValueFactory = _ => 1500 };
        var publish = new Option<string[]>("--publish", "-p") { Description = "Publish a guest port: [HOSTADDR:]HOSTPORT:GUESTPORT[/udp]", AllowMultipleArgumentsPerToken = false };
        var ipv6 = new Option<bool>("--ipv6", "-6") { Description = "Also give the guest IPv6 (fd00::/64)" };
        var noOffload = new Option<bool>("--no-offload") { Description = "Do not use the tap's segmentation offload" };
        var verbose = new Option<bool>("--debug") { Description = "Log the stack's decisions to stderr" };
        var command = new Argument<string[]>("command") { Description = "The command to run and its arguments (after --)", Arity = ArgumentArity.OneOrMore };
        var run = new Command("run", "Run a command in its own network namespace, networked by Beemesh's userland stack")
        {
            mtu, publish, ipv6, noOffload, verbose, command,
        };
        run.SetAction(parse => Execute(
            parse.GetValue(mtu),
            parse.GetValue(publish) ?? [],
            parse.GetValue(ipv6),
            !parse.GetValue(noOffload),
            parse.GetValue(verbose),
            parse.GetValue(command) ?? []));
        return run;
    }

    private static int Execute(int mtu, string[] publish, bool ipv6, bool offload, bool debug, string[] command)
    {
        if (mtu is < 576 or > 65521)
        {
            Console.Error.WriteLine($"beemesh run: invalid MTU {mtu}: must be between 576 and 65521");
            return 2;
        }

        var mappings = new List<PortMapping>();
        foreach (string p in publish)
        {
            if (!PortMapping.TryParse(p, out var mapping, out string? error))
            {
                Console.Error.WriteLine($"beemesh run: {error}");
                return 2;
            }

            mappings.Add(mapping!);
        }

        // Logs go to stderr: stdout belongs to the command being run.
        using var loggerFactory = LoggerFactory.Create(b =>
        {
            b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(debug ? LogLevel.Debug : LogLevel.Warning);
            b.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        });
        var logger = loggerFactory.CreateLogger("beemesh.run");
        var options = new StackOptions { Mtu = mtu, EnableIpv6 = ipv6, DnsUpstream = DnsUpstreamSelector.SelectFromEnvironment() };

        TapRunner runner;
        try
        {
            runner = TapRunner.Start(
                new TapRunRequest { Command = command, Mtu = mtu, Ipv6 = ipv6, VnetHeader = offload, Address = $"{options.Guest}/{options.PrefixLength}", Gateway = options.Gateway.ToString() },
                TimeSpan.FromSeconds(10));
        }
        catch (TapOpenException e)
        {
            Console.Error.WriteLine($"beemesh run: {e.Message}");
            return 1;
        }

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

            var loop = new Thread(stack.Run) { IsBackground = true, Name = "beemesh-netstack" };
            loop.Start();
            runner.Release();
            int status = runner.WaitForExitAsync().GetAwaiter().GetResult();
            stack.Stop();
            loop.Join(TimeSpan.FromSeconds(2));
            if (debug)
            {
                Console.Error.Write(stack.Counters.ToPrometheus());
            }

            return status;
        }
    }
}
