using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Kubernetes;

/// <summary>
/// The repository's Dockerfile, built with podman and run. No registry is reachable here, so the
/// runtime image is a minimal Debian root file system made by mmdebstrap from this machine's apt
/// source and imported with `podman import` (kept between runs in the test user's storage as
/// localhost/beemesh-test-base:bookworm: making it takes about 2 minutes on an idle machine, 5 on a
/// busy one), the binaries come from out/bin (BIN_SOURCE=prebuilt: no SDK image either) and
/// libmsquic is left out (INSTALL_MSQUIC=false: its repository is not reachable). Podman runs
/// rootless, as the unprivileged test user of scripts/rootless-user: root podman cannot start
/// containers on machines where root lacks CAP_SYS_RESOURCE (runc fails setting RLIMIT_NPROC).
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class ImageBuildTests(ITestOutputHelper output)
{
    private const string BaseImage = "localhost/beemesh-test-base:bookworm";

    [SkippableFact]
    public void DockerfileBuildsAnImageThatRunsTheSidecar()
    {
        Skip.If(BeemeshEnvironment.BinDirectory is null, "out/bin/beemesh is missing: run ./scripts/build");
        string? reason = Podman.SkipReason();
        Skip.If(reason is not null, reason);
        Skip.If(BeemeshEnvironment.FindOnPath("mmdebstrap") is null, "'mmdebstrap' is not installed (scripts/test installs it)");
        string repo = Path.GetFullPath(Path.Combine(BeemeshEnvironment.BinDirectory!, "..", ".."));
        Skip.IfNot(File.Exists(Path.Combine(repo, "Dockerfile")), $"no Dockerfile at {repo} (BEEMESH_BIN points outside the repository)");

        var made = Podman.Run("bash", [Path.Combine(repo, "scripts", "rootless-user")]);
        Assert.True(made.Exit == 0, made.Err);
        string user = made.Out.Trim();

        // The build context: the Dockerfile and the four binaries, in a directory the user can read.
        var context = Directory.CreateTempSubdirectory("beemesh-image-");
        File.SetUnixFileMode(context.FullName, (UnixFileMode)0x1ED); // 0755
        string bin = Path.Combine(context.FullName, "out", "bin");
        Directory.CreateDirectory(bin);
        File.Copy(Path.Combine(repo, "Dockerfile"), Path.Combine(context.FullName, "Dockerfile"));
        File.Copy(Path.Combine(repo, ".dockerignore"), Path.Combine(context.FullName, ".dockerignore"));
        foreach (string name in new[] { "beemesh", "beemesh-sidecar", "beemesh-slirp", "beemesh-nsenter" })
        {
            File.Copy(Path.Combine(BeemeshEnvironment.BinDirectory!, name), Path.Combine(bin, name));
        }

        string tag = $"localhost/beemesh-image-test:{Guid.NewGuid().ToString("N")[..8]}";
        try
        {
            if (AsUser(user, $"podman image exists {BaseImage}").Exit != 0)
            {
                // libssl3 and ca-certificates: what the .NET runtime-deps images carry for TLS.
                string tar = Path.Combine(context.FullName, "base.tar");
                var strap = Podman.Run("mmdebstrap", ["--variant=minbase", "--quiet", "--include=libssl3,ca-certificates", "bookworm", tar], timeout: TimeSpan.FromMinutes(10));
                output.WriteLine(strap.Err);
                Assert.True(strap.Exit == 0, strap.Err);
                Assert.Equal(0, Podman.Run("chown", [$"{user}:", tar]).Exit);
                var imported = AsUser(user, $"podman import {tar} {BaseImage} && rm -f {tar}");
                Assert.True(imported.Exit == 0, imported.Err);
            }

            Assert.Equal(0, Podman.Run("chown", ["-R", $"{user}:", context.FullName]).Exit);
            var build = AsUser(user, $"cd {context.FullName} && podman build --build-arg RUNTIME_IMAGE={BaseImage} --build-arg BIN_SOURCE=prebuilt " +
                $"--build-arg INSTALL_MSQUIC=false --build-arg VERSION=test -t {tag} .", TimeSpan.FromMinutes(5));
            output.WriteLine(build.Out + build.Err);
            Assert.True(build.Exit == 0, build.Err);

            // One container for the plain checks: each run copies the root file system on vfs.
            var tools = AsUser(user, $"podman run --rm --network none --entrypoint sh {tag} -c " +
                "'beemesh --version; id -u; slirp4netns --version | head -1; test -x /usr/local/bin/beemesh-nsenter && echo nsenter-ok; test -x /usr/local/bin/beemesh-sidecar && echo sidecar-ok; readlink /usr/local/bin/slirp4netns'");
            output.WriteLine(tools.Out + tools.Err);
            Assert.Equal(0, tools.Exit);
            string[] lines = tools.Out.Split('\n');
            Assert.Equal(Podman.Run(BeemeshEnvironment.BeemeshPath, ["--version"]).Out.Trim(), lines[0]);
            Assert.Equal("10001", lines[1]);
            Assert.Contains("nsenter-ok", tools.Out, StringComparison.Ordinal);
            Assert.Contains("sidecar-ok", tools.Out, StringComparison.Ordinal);
            Assert.Equal("beemesh-slirp", lines[^2]);

            // The default entrypoint is the sidecar.
            var help = RunContainer(user, tag, "--help");
            output.WriteLine(help.Out);
            Assert.Equal(0, help.Exit);
            Assert.Contains("beemesh sidecar [options]", help.Out, StringComparison.Ordinal);
            Assert.Contains("--inbound", help.Out, StringComparison.Ordinal);

            // The sidecar really runs in the image (beemesh execs beemesh-sidecar): with no agent it says so and exits 1.
            var sidecar = RunContainer(user, tag, "--name web --inbound 15006 --agent /nonexistent");
            output.WriteLine(sidecar.Err);
            Assert.Equal(1, sidecar.Exit);
            Assert.Contains("beemesh sidecar: cannot join the mesh through the agent at /nonexistent", sidecar.Err, StringComparison.Ordinal);

            var labels = AsUser(user, $"podman image inspect {tag} --format '{{{{index .Labels \"org.opencontainers.image.title\"}}}} {{{{.Config.User}}}} {{{{.Config.Entrypoint}}}}'");
            Assert.Equal("beemesh beemesh [beemesh sidecar]", labels.Out.Trim());
        }
        finally
        {
            AsUser(user, $"podman rmi -f {tag}");
            context.Delete(recursive: true);
        }
    }

    /// <summary>
    /// Runs the image's entrypoint with <paramref name="arguments"/> (no network) and returns its exit
    /// status with its standard output and error as conmon's log file holds them: podman 4.3 lost the
    /// attached output of a container that exited within milliseconds once here (`--help`: exit 0,
    /// nothing printed), while the log file keeps all of it.
    /// </summary>
    private static (int Exit, string Out, string Err) RunContainer(string user, string tag, string arguments)
    {
        string name = "beemesh-image-test-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            var run = AsUser(user, $"podman run --name {name} --network none {tag} {arguments} >/dev/null 2>&1");
            var logs = AsUser(user, $"podman logs {name}");
            Assert.True(logs.Exit == 0, logs.Err);
            return (run.Exit, logs.Out, logs.Err);
        }
        finally
        {
            AsUser(user, $"podman rm -f {name}");
        }
    }

    private static (int Exit, string Out, string Err) AsUser(string user, string commandLine, TimeSpan? timeout = null) =>
        Podman.Run("su", ["-", user, "-c", commandLine], timeout: timeout);
}
