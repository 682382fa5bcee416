using System.Diagnostics;

namespace Beemesh.Netstack.Tests.Link;

/// <summary>
/// Finds the <c>beemesh-nsenter</c> helper for tests: <c>BEEMESH_NSENTER</c> if set, else
/// <c>native/build/beemesh-nsenter</c> in the repository above the test binaries, built with
/// <c>make -C native</c> (incremental, so cheap when up to date).
/// </summary>
internal static class NsenterBinary
{
    private static readonly Lazy<string> Located = new(Locate);

    /// <summary>Absolute path of the helper.</summary>
    public static string Path => Located.Value;

    /// <summary>Skips the calling [SkippableFact] when it cannot create namespaces and taps here.</summary>
    public static void SkipUnlessPrivileged()
    {
        string? reason = MissingPrivilege();
        Skip.If(reason is not null, reason);
    }

    /// <summary>Why real-namespace tests cannot run here, or null when they can.</summary>
    public static string? MissingPrivilege()
    {
        if (Environment.UserName != "root" && !IsUidZero())
        {
            return "needs root (creates network namespaces and tap devices)";
        }
        if (!File.Exists("/dev/net/tun"))
        {
            return "/dev/net/tun is absent";
        }
        return null;
    }

    private static bool IsUidZero()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("Uid:", StringComparison.Ordinal))
            {
                return line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == "0";
            }
        }
        return false;
    }

    private static string Locate()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable("BEEMESH_NSENTER");
        if (!string.IsNullOrEmpty(fromEnvironment))
        {
            return fromEnvironment;
        }
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string native = System.IO.Path.Combine(directory.FullName, "native");
            if (File.Exists(System.IO.Path.Combine(native, "Makefile")))
            {
                Build(native);
                return System.IO.Path.Combine(native, "build", "beemesh-nsenter");
            }
        }
        throw new InvalidOperationException("native/Makefile not found above " + AppContext.BaseDirectory + "; set BEEMESH_NSENTER");
    }

    private static void Build(string native)
    {
        var start = new ProcessStartInfo("make", ["-s", "-C", native])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using Process make = Process.Start(start)!;
        string errors = make.StandardError.ReadToEnd();
        make.StandardOutput.ReadToEnd();
        make.WaitForExit();
        if (make.ExitCode != 0)
        {
            throw new InvalidOperationException("make -C native failed: " + errors);
        }
    }
}
