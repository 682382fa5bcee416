namespace Beemesh.EndToEnd.Tests.Slirp;

/// <summary>
/// Finds the slirp implementation a test runs against: <c>slirp4netns</c> is the Debian reference
/// at /usr/bin/slirp4netns, <c>beemesh</c> is our beemesh-slirp in <c>$BEEMESH_BIN</c> or in
/// out/bin of the checkout. Skips the test (never fails it) when the environment cannot run it.
/// </summary>
internal static class SlirpImplementation
{
    /// <summary>The name used in test data for the reference implementation.</summary>
    public const string Reference = "slirp4netns";

    /// <summary>The name used in test data for our implementation.</summary>
    public const string Beemesh = "beemesh";

    private const string ReferencePath = "/usr/bin/slirp4netns";

    /// <summary>Returns the binary for an implementation, or skips the test with the reason.</summary>
    /// <param name="implementation"><see cref="Reference"/> or <see cref="Beemesh"/>.</param>
    /// <returns>The absolute path of the executable.</returns>
    public static string Require(string implementation)
    {
        Skip.IfNot(Environment.IsPrivilegedProcess, "slirp end-to-end tests need root (namespaces, veth, port 53).");
        foreach (string tool in new[] { "/usr/bin/unshare", "/usr/bin/nsenter", "/usr/bin/busybox", "/usr/bin/ncat", "/usr/bin/bash" })
        {
            Skip.IfNot(File.Exists(tool), $"slirp end-to-end tests need {tool}.");
        }

        string path = implementation switch
        {
            Reference => ReferencePath,
            Beemesh => Path.Combine(BeemeshBinDirectory() ?? "/nonexistent", "beemesh-slirp"),
            _ => throw new ArgumentOutOfRangeException(nameof(implementation), implementation, "unknown slirp implementation"),
        };
        Skip.IfNot(File.Exists(path), $"{implementation} not found at {path} (run ./scripts/build, or set BEEMESH_BIN).");
        return path;
    }

    /// <summary>$BEEMESH_BIN, else out/bin next to Sidecar.sln above the test assembly; null when neither exists.</summary>
    private static string? BeemeshBinDirectory()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable("BEEMESH_BIN");
        if (!string.IsNullOrEmpty(fromEnvironment))
        {
            return fromEnvironment;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Sidecar.sln")))
            {
                return Path.Combine(dir.FullName, "out", "bin");
            }
        }

        return null;
    }
}
