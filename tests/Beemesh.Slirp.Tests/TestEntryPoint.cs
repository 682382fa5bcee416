using Beemesh.Slirp.Tests.Interop;

namespace Beemesh.Slirp.Tests;

/// <summary>
/// Entry point of the test assembly, used only when a test starts it as a child process
/// (the test runner never calls it), so that irreversible process-wide changes such as a
/// seccomp filter are made in a throw-away process.
/// </summary>
public static class TestEntryPoint
{
    /// <summary>Argument that makes the child run <see cref="SeccompProbe"/>.</summary>
    public const string SeccompProbeFlag = "--seccomp-probe";

    /// <summary>Dispatches on the first argument.</summary>
    public static int Main(string[] args) =>
        args.Length > 0 && args[0] == SeccompProbeFlag ? SeccompProbe.Run() : 0;
}
