using System.Diagnostics;
using System.Text;
using Beemesh.EndToEnd.Tests.Support;

namespace Beemesh.EndToEnd.Tests.Podman;

/// <summary>
/// Prepares rootless podman to use Beemesh as its network: an unprivileged user with subordinate
/// ids (scripts/rootless-user), a busybox root file system (no image registry here), and a
/// containers.conf whose network_cmd_path is a wrapper that records its arguments and execs our
/// slirp4netns. The binaries are copied to a world-readable directory so every path component
/// is searchable by the user. Shared by the podman tests; disposed once.
/// </summary>
public sealed class PodmanEnvironment : IDisposable
{
    public PodmanEnvironment()
    {
        SkipReason = FindSkipReason();
        if (SkipReason is not null)
        {
            return;
        }

        User = Run("bash", [Path.Combine(RepoRoot!, "scripts", "rootless-user")]).Output.Trim();
        Home = Run("sh", ["-c", $"getent passwd {User} | cut -d: -f6"]).Output.Trim();
        Directory = System.IO.Directory.CreateTempSubdirectory("beemesh-podman-").FullName;
        File.SetUnixFileMode(Directory, (UnixFileMode)0x1ED); // 0755
        string bin = Path.Combine(Directory, "bin");
        System.IO.Directory.CreateDirectory(bin);
        foreach (string name in new[] { "beemesh-slirp", "beemesh-nsenter" })
        {
            File.Copy(Path.Combine(BinDirectory!, name), Path.Combine(bin, name));
        }

        ArgumentLog = Path.Combine(Directory, "network-cmd.log");
        File.WriteAllText(ArgumentLog, string.Empty);
        File.SetUnixFileMode(ArgumentLog, (UnixFileMode)0x1B6); // 0666
        NetworkCommand = Path.Combine(bin, "slirp4netns");
        File.WriteAllText(NetworkCommand, $"#!/bin/sh\necho \"$@\" >> {ArgumentLog}\nexec {Path.Combine(bin, "beemesh-slirp")} \"$@\"\n");
        File.SetUnixFileMode(NetworkCommand, (UnixFileMode)0x1ED);

        RootFs = Path.Combine(Directory, "rootfs");
        foreach (string d in new[] { "bin", "etc", "proc", "sys", "dev", "tmp", "www" })
        {
            System.IO.Directory.CreateDirectory(Path.Combine(RootFs, d));
        }

        File.Copy("/bin/busybox", Path.Combine(RootFs, "bin", "busybox"));
        foreach (string tool in new[] { "sh", "wget", "nc", "ip", "cat", "echo", "sleep", "httpd", "nslookup" })
        {
            File.CreateSymbolicLink(Path.Combine(RootFs, "bin", tool), "busybox");
        }

        File.WriteAllText(Path.Combine(RootFs, "www", "index.html"), "served-by-container\n");
        Run("chown", ["-R", $"{User}:", RootFs]);

        string confDir = Path.Combine(Home!, ".config", "containers");
        System.IO.Directory.CreateDirectory(confDir);
        ContainersConf = Path.Combine(confDir, "containers.conf");
        if (File.Exists(ContainersConf))
        {
            File.Copy(ContainersConf, ContainersConf + ".beemesh-backup", overwrite: true);
        }

        File.WriteAllText(ContainersConf,
            "[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n" +
            $"network_cmd_path = \"{NetworkCommand}\"\n");
        Run("chown", ["-R", $"{User}:", Path.Combine(Home!, ".config")]);
    }

    /// <summary>Why the podman tests cannot run here, or null.</summary>
    public string? SkipReason { get; }

    public string? User { get; }

    public string? Home { get; }

    public string? Directory { get; }

    public string? RootFs { get; }

    public string? ArgumentLog { get; }

    public string? NetworkCommand { get; }

    private string? ContainersConf { get; }

    private static string? RepoRoot { get; } = FindRepoRoot();

    private static string? BinDirectory { get; } =
        Environment.GetEnvironmentVariable("BEEMESH_BIN") ?? (RepoRoot is null ? null : Path.Combine(RepoRoot, "out", "bin"));

    /// <summary>Runs a shell command line as the test user (a login shell, as an operator would).</summary>
    public (int ExitCode, string Output) AsUser(string commandLine, TimeSpan? timeout = null) =>
        Run("su", ["-", User!, "-c", commandLine], timeout ?? TimeSpan.FromMinutes(2));

    public static (int ExitCode, string Output) Run(string file, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var output = new StringBuilder();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromMinutes(1)))
        {
            ProcessTree.Kill(p);
            return (-1, "timed out");
        }

        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    private static string? FindSkipReason()
    {
        if (Environment.UserName != "root")
        {
            return "rootless podman tests need root to prepare a test user (CI runs as root)";
        }

        if (!File.Exists("/usr/bin/podman") || !File.Exists("/usr/bin/runc") || !File.Exists("/bin/busybox"))
        {
            return "podman, runc or busybox-static is not installed (scripts/test installs them)";
        }

        if (RepoRoot is null || BinDirectory is null || !File.Exists(Path.Combine(BinDirectory, "beemesh-slirp")))
        {
            return "out/bin/beemesh-slirp is missing: run ./scripts/build";
        }

        var mode = File.GetUnixFileMode("/dev/net/tun");
        if ((mode & UnixFileMode.OtherWrite) == 0)
        {
            return "/dev/net/tun is not usable by an unprivileged user (scripts/test sets mode 666)";
        }

        return null;
    }

    private static string? FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Sidecar.sln")))
            {
                return dir.FullName;
            }
        }

        return null;
    }

    public void Dispose()
    {
        if (SkipReason is not null)
        {
            return;
        }

        AsUser("podman rm -a -f >/dev/null 2>&1; true");
        if (ContainersConf is not null && File.Exists(ContainersConf + ".beemesh-backup"))
        {
            File.Move(ContainersConf + ".beemesh-backup", ContainersConf, overwrite: true);
        }

        try
        {
            System.IO.Directory.Delete(Directory!, recursive: true);
        }
        catch (IOException)
        {
            // podman may still hold files of a container that is being removed; /tmp is cleaned anyway
        }
    }
}
