using System.CommandLine;
using Beemesh.Cli.Commands;

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
