using System.CommandLine;
using Beemesh.Cli.Commands;
using Beemesh.Spiffe.X509;

// Every TLS connection of beemesh is SPIFFE mutual TLS, checked against the trust domain's bundle:
// the machine's trust store plays no part, yet the platform would load it into every chain build
// and reload it inside a handshake every five minutes. It is emptied for this process, before any
// certificate work (commands run by `beemesh run` keep their environment). See PlatformTrustStore.
PlatformTrustStore.UseEmptyStore();

var root = new RootCommand("Beemesh: a network of its own, carrying its identity, for every workload")
{
    SidecarExecutable.Delegate(RunCommand.Create(), args),
    DemoCommand.Create(),
    DemoServeCommand.Create(),
    ProbeCommand.Create(),
    DemoTickerCommand.Create(),
    DemoStreamCommand.Create(),
    AgentCommand.Create(),
    PolicyCommand.Create(),
    StatusCommand.Create(),
    SidecarExecutable.Delegate(SidecarCommand.Create(), args),
    SimulateCommand.Create(),
    TokenCommand.Create(),
    MembersCommand.Create(),
    NodeCommand.Create(),
    InjectCommand.Create(),
    ManifestsCommand.Create(),
};
return root.Parse(args).Invoke();
