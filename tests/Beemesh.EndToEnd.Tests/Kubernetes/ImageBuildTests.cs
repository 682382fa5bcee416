using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Kubernetes;

/// <summary>
/// The repository's Dockerfile, built with podman and run. No registry is reachable here, so the
/// runtime image is a minimal Debian root file system made by mmdebstrap from this machine's apt
/// source and imported with `podman import` (kept between runs as localhost/beemesh-test-base:bookworm:
/// making it takes about 2 minutes on an idle machine), the binaries come from out/bin
/// (BIN_SOURCE=prebuilt: no SDK image either) and libmsquic is left out (INSTALL_MSQUIC=false: its
/// repository is not reachable).
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class ImageBuildTests(ITestOutputHelper output)
{
    private const string BaseImage = "localhost/beemesh-test-base:bookworm";

    [SkippableFact]
    public void DockerfileBuildsAnImageThatRunsTheSidecar()
    {
        Skip.If(BeemeshEnvironment.BinDirectory is null, "out/bin/beemesh is missing: run ./scripts/build");
        Skip.If(Podman.SkipReason() is { } reason, reason);
        Skip.If(BeemeshEnvironment.FindOnPath("mmdebstrap") is null, "'mmdebstrap' is not installed (scripts/test installs it)");
        string repo = Path.GetFullPath(Path.Combine(BeemeshEnvironment.BinDirectory!, "..", ".."));
        Skip.IfNot(File.Exists(Path.Combine(repo, "Dockerfile")), $"no Dockerfile at {repo} (BEEMESH_BIN points outside the repository)");

        if (Podman.Run("podman", ["image", "exists", BaseImage]).Exit != 0)
        {
            // libssl3 and ca-certificates: what the .NET runtime-deps images carry for TLS.
            var made = Podman.Run("sh", ["-c", $"mmdebstrap --variant=minbase --quiet --include=libssl3,ca-certificates bookworm - | podman import - {BaseImage}"],
                timeout: TimeSpan.FromMinutes(10));
            output.WriteLine(made.Err);
            Assert.True(made.Exit == 0, made.Err);
        }

        string tag = $"localhost/beemesh-image-test:{Guid.NewGuid().ToString("N")[..8]}";
        try
        {
            var build = Podman.Run("podman", ["build", "--build-arg", $"RUNTIME_IMAGE={BaseImage}", "--build-arg", "BIN_SOURCE=prebuilt",
                "--build-arg", "INSTALL_MSQUIC=false", "--build-arg", "VERSION=test", "-t", tag, "-f", Path.Combine(repo, "Dockerfile"), repo],
                timeout: TimeSpan.FromMinutes(5));
            output.WriteLine(build.Out + build.Err);
            Assert.True(build.Exit == 0, build.Err);

            var version = Podman.Run("podman", ["run", "--rm", "--entrypoint", "beemesh", tag, "--version"]);
            Assert.Equal(0, version.Exit);
            Assert.Equal(Podman.Run(BeemeshEnvironment.BeemeshPath, ["--version"]).Out, version.Out);

            // The default entrypoint is the sidecar.
            var help = Podman.Run("podman", ["run", "--rm", tag, "--help"]);
            output.WriteLine(help.Out);
            Assert.Equal(0, help.Exit);
            Assert.Contains("beemesh sidecar [options]", help.Out, StringComparison.Ordinal);
            Assert.Contains("--inbound", help.Out, StringComparison.Ordinal);

            // The sidecar really runs in the image: with no agent it says so and exits 1.
            var sidecar = Podman.Run("podman", ["run", "--rm", tag, "--name", "web", "--inbound", "15006", "--agent", "/nonexistent"]);
            output.WriteLine(sidecar.Err);
            Assert.Equal(1, sidecar.Exit);
            Assert.Contains("beemesh sidecar: cannot join the mesh through the agent at /nonexistent", sidecar.Err, StringComparison.Ordinal);

            var user = Podman.Run("podman", ["run", "--rm", "--entrypoint", "id", tag, "-u"]);
            Assert.Equal("10001", user.Out.Trim());

            var tools = Podman.Run("podman", ["run", "--rm", "--entrypoint", "sh", tag, "-c",
                "slirp4netns --version | head -1; test -x /usr/local/bin/beemesh-nsenter && echo nsenter-ok; readlink /usr/local/bin/slirp4netns"]);
            output.WriteLine(tools.Out + tools.Err);
            Assert.Equal(0, tools.Exit);
            Assert.Contains("nsenter-ok", tools.Out, StringComparison.Ordinal);
            Assert.Contains("beemesh-slirp", tools.Out, StringComparison.Ordinal);

            var labels = Podman.Run("podman", ["image", "inspect", tag, "--format", "{{index .Labels \"org.opencontainers.image.title\"}} {{.Config.User}} {{.Config.Entrypoint}}"]);
            Assert.Equal("beemesh beemesh [beemesh sidecar]", labels.Out.Trim());
        }
        finally
        {
            Podman.Run("podman", ["rmi", "-f", tag]);
        }
    }
}
