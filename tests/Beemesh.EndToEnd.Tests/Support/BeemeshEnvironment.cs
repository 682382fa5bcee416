namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// Where the built binaries are and whether this machine can run the end-to-end tests. The tests
/// create namespaces, veth pairs and raw sockets, so they need root; without it, or without a build,
/// they skip with a reason instead of failing.
/// </summary>
public static class BeemeshEnvironment
{
    private static readonly Lazy<string?> Bin = new(FindBinDirectory);

    /// <summary>The directory holding <c>beemesh</c>, or null when it cannot be found.</summary>
    public static string? BinDirectory => Bin.Value;

    /// <summary>Full path of the <c>beemesh</c> CLI (only meaningful when <see cref="BinDirectory"/> is set).</summary>
    public static string BeemeshPath => Path.Combine(BinDirectory ?? "", "beemesh");

    /// <summary>
    /// Skips the calling test unless the binaries are built, the process is root and every tool in
    /// <paramref name="tools"/> is on PATH.
    /// </summary>
    /// <param name="tools">Programs the test runs inside or next to the namespace.</param>
    public static void RequireReady(params string[] tools)
    {
        Skip.If(BinDirectory is null,
            "beemesh binaries not found: set BEEMESH_BIN or run ./scripts/build (looked for out/bin/beemesh next to Sidecar.sln)");
        Skip.IfNot(Environment.IsPrivilegedProcess, "end-to-end namespace tests need root (CI runs them as root)");
        foreach (string tool in tools)
        {
            Skip.If(FindOnPath(tool) is null, $"'{tool}' is not installed (scripts/test installs it)");
        }
    }

    /// <summary>Reads a byte count from an environment variable, or returns the default.</summary>
    /// <param name="name">Variable name.</param>
    /// <param name="fallback">Value when unset.</param>
    public static long ByteCount(string name, long fallback)
    {
        string? text = Environment.GetEnvironmentVariable(name);
        return string.IsNullOrWhiteSpace(text) ? fallback : long.Parse(text.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The absolute path of <paramref name="tool"/> on PATH, or null.</summary>
    public static string? FindOnPath(string tool)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static string? FindBinDirectory()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable("BEEMESH_BIN");
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            return File.Exists(Path.Combine(fromEnvironment, "beemesh")) ? fromEnvironment : null;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Sidecar.sln")))
            {
                string bin = Path.Combine(dir.FullName, "out", "bin");
                return File.Exists(Path.Combine(bin, "beemesh")) ? bin : null;
            }
        }

        return null;
    }
}
