using System.CommandLine;
using Beemesh.Cli.Commands;
using Beemesh.Spiffe.X509;

// As in the CLI: this process's TLS is SPIFFE only, so the machine's trust store is kept out of its
// handshakes; the workload it starts keeps the variables as they were. See PlatformTrustStore.
PlatformTrustStore.UseEmptyStore();

// The sidecar role on its own: `beemesh run` and `beemesh sidecar` exec this executable with their
// own arguments once they have parsed them (see SidecarExecutable in the CLI).
var root = new RootCommand("Beemesh sidecar: the userland stack and the mesh sidecar of one workload")
{
    RunCommand.Create(),
    SidecarCommand.Create(),
};
return root.Parse(args).Invoke();
