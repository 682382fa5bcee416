using System.Net;
using System.Runtime.InteropServices;
using Beemesh.Netstack.Dns;
using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Link;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Tcp;
using Beemesh.Slirp.Api;
using Beemesh.Slirp.Cli;
using Beemesh.Slirp.Sandbox;

namespace Beemesh.Slirp;

/// <summary>
/// Runs the stack for a slirp4netns-style invocation: gets the tap from the target namespace
/// (through <c>beemesh-nsenter</c>), serves it until the exit fd closes or a signal arrives, with
/// the API socket, ready fd, seccomp and sandbox behaviour of slirp4netns.
/// </summary>
public static class SlirpHost
{
    /// <summary>Runs until told to stop; returns the process exit code.</summary>
    /// <param name="o">The parsed command line.</param>
    /// <param name="args">The command line as given (the sandbox re-executes the program with it).</param>
    /// <param name="stdout">Progress lines, as slirp4netns prints them.</param>
    /// <param name="stderr">Error lines.</param>
    public static int Run(SlirpOptions o, IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        var stackOptions = new StackOptions
        {
            Network = o.Network,
            PrefixLength = o.PrefixLength,
            Gateway = o.Gateway,
            Dns = o.Dns,
            Guest = o.Guest,
            DhcpStart = o.DhcpStart,
            EnableIpv6 = o.EnableIpv6,
            Ipv6Prefix = o.Ipv6Prefix,
            Ipv6Gateway = o.Ipv6Gateway,
            Ipv6Dns = o.Ipv6Dns,
            Mtu = o.Mtu,
            DisableHostLoopback = o.DisableHostLoopback,
            OutboundAddress = o.OutboundAddr,
            OutboundAddress6 = o.OutboundAddr6,
            DisableDns = o.DisableDns,
        };
        try
        {
            stackOptions.DnsUpstream = DnsUpstreamSelector.SelectFromEnvironment();
            stackOptions.TcpCongestionControl = TcpCongestionControlSetting.FromEnvironment();
        }
        catch (FormatException e)
        {
            stderr.WriteLine(e.Message);
            return 1;
        }

        string tapName = KernelInterfaceName(o.TapName);
        SandboxHandoff? handoff = null;
        if (o.EnableSandbox)
        {
            string? state = Environment.GetEnvironmentVariable(SandboxHandoff.VariableName);
            if (state is null)
            {
                // Returns only when the helper could not be executed.
                stderr.WriteLine(SlirpSandboxLauncher.Exec(o, args, tapName));
                return 1;
            }

            Environment.SetEnvironmentVariable(SandboxHandoff.VariableName, null);
            if (!SandboxHandoff.TryParse(state, out handoff))
            {
                stderr.WriteLine($"{SandboxHandoff.VariableName} is malformed: '{state}'");
                return 1;
            }
        }

        TapHandle tap;
        try
        {
            tap = handoff is not null
                ? new TapHandle(handoff.TapFd, tapName, handoff.VnetHeader, handoff.Offload)
                : TapOpener.Open(
                new TapOpenRequest
                {
                    Pid = o.NetnsType == SlirpNetnsType.Pid ? o.TargetPid : null,
                    NetnsPath = o.NetnsType == SlirpNetnsType.Path ? o.NetnsPath ?? o.Target : null,
                    UsernsPath = o.UsernsPath,
                    TapName = tapName,
                    VnetHeader = Environment.GetEnvironmentVariable("BEEMESH_NO_OFFLOAD") is null,
                    Configure = o.Configure,
                    Mtu = o.Mtu,
                    Address = $"{o.Guest}/{o.PrefixLength}",
                    Gateway = o.Gateway.ToString(),
                    Mac = o.MacAddress is { } mac ? string.Join(":", mac.Select(b => b.ToString("x2"))) : null,
                    Ipv6 = o.EnableIpv6,
                },
                TimeSpan.FromSeconds(30));
        }
        catch (TapOpenException e)
        {
            stderr.WriteLine(e.HelperMessage ?? e.Message);
            return 1;
        }
        catch (IOException e)
        {
            stderr.WriteLine($"the sandbox's tap fd is unusable: {e.Message}");
            return 1;
        }

        using var stack = new NetworkStack(stackOptions, new TapLink(tap));
        stack.LinkDown += stack.Stop;
        // slirp4netns prints the same progress lines; scripts sometimes look at them.
        stdout.WriteLine($"sent tapfd={tap.FileDescriptor} for {o.TapName}");
        stdout.WriteLine($"received tapfd={tap.FileDescriptor}");
        stdout.WriteLine("Starting slirp");
        stdout.WriteLine($"* MTU:             {o.Mtu}");
        stdout.WriteLine($"* Network:         {o.Network}");
        stdout.WriteLine($"* Netmask:         {o.Netmask}");
        stdout.WriteLine($"* Gateway:         {o.Gateway}");
        stdout.WriteLine($"* DNS:             {o.Dns}");
        stdout.WriteLine($"* DHCP begin:      {o.DhcpStart}");
        stdout.WriteLine($"* DHCP end:        {IpOffset(o.DhcpStart, 15)}");
        stdout.WriteLine($"* Recommended IP:  {o.Guest}");
        if (o.ApiSocket is not null)
        {
            stdout.WriteLine($"* API Socket:      {o.ApiSocket}");
        }

        if (o.EnableIpv6)
        {
            stdout.WriteLine($"* NetworkV6:       {o.Ipv6Prefix}");
            stdout.WriteLine($"* GatewayV6:       {o.Ipv6Gateway}");
            stdout.WriteLine($"* DNSV6:           {o.Ipv6Dns}");
        }

        stdout.Flush();

        SlirpApiServer? api = null;
        if (o.ApiSocket is not null)
        {
            try
            {
                api = new SlirpApiServer(o.ApiSocket, stack.PortForwards, null, o.Guest, enableIpv6: o.EnableIpv6);
                api.Start();
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"api_bindlisten: {e.Message}");
                return 1;
            }
        }

        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stack.Stop(); });
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stack.Stop(); });
        // slirp4netns's order: the sandbox once everything is set up, then seccomp, then ready.
        if (handoff is not null && SlirpSandboxLauncher.PivotIntoSandbox(handoff) is { } sandboxError)
        {
            stderr.WriteLine($"create_sandbox failed: {sandboxError}");
            return 1;
        }

        if (o.EnableSeccomp && !SeccompFilter.TryInstall(out string? seccompError))
        {
            stderr.WriteLine($"seccomp: {seccompError}");
            return 1;
        }

        // slirp4netns's order: ready is written before the loop looks at the exit fd.
        if (o.ReadyFd is int readyFd)
        {
            stack.Post(() => SignalReady(readyFd));
        }

        if (o.ExitFd is int exitFd)
        {
            stack.Watch(exitFd, stack.Stop);
        }

        stack.Run();
        api?.Dispose();
        return 0;
    }

    /// <summary>
    /// slirp4netns copies at most IFNAMSIZ - 1 = 15 bytes of the tap name into the TUNSETIFF request,
    /// so a longer name is cut there rather than refused.
    /// </summary>
    private static string KernelInterfaceName(string name)
    {
        const int MaxBytes = 15;
        while (System.Text.Encoding.UTF8.GetByteCount(name) > MaxBytes)
        {
            name = name[..^1];
        }

        return name;
    }

    private static unsafe void SignalReady(int fd)
    {
        byte one = (byte)'1';
        Sys.write(fd, &one, 1);
        Sys.close(fd);
    }

    private static IPAddress IpOffset(IPAddress start, int add)
    {
        Span<byte> b = stackalloc byte[4];
        start.TryWriteBytes(b, out _);
        uint v = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b) + (uint)add;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(b, v);
        return new IPAddress(b);
    }
}
