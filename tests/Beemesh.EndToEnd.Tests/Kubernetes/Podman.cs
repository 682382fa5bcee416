using System.Diagnostics;
using Beemesh.EndToEnd.Tests.Support;

namespace Beemesh.EndToEnd.Tests.Kubernetes;

/// <summary>Runs podman (as root) and the built CLI for the Kubernetes tests, with stdout and stderr apart.</summary>
internal static class Podman
{
    /// <summary>Why podman cannot run pods here, or null.</summary>
    public static string? SkipReason()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return "the podman kube play and image tests run podman as root (CI runs as root)";
        }

        foreach (string tool in new[] { "podman", "catatonit" })
        {
            if (Support.BeemeshEnvironment.FindOnPath(tool) is null)
            {
                return $"'{tool}' is not installed (scripts/test installs it; podman builds its pause image with catatonit)";
            }
        }

        return null;
    }

    /// <summary>Runs <paramref name="file"/>; kills it after <paramref name="timeout"/> (exit -1).</summary>
    public static (int Exit, string Out, string Err) Run(string file, IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
        }

        p.StandardInput.Close();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromMinutes(2)))
        {
            ProcessTree.Kill(p);
            return (-1, stdout.Result, stderr.Result + "\n(timed out)");
        }

        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>
    /// A one-file image (busybox) for app containers: no registry is reachable here, and kube play
    /// needs the images of every container to exist even with --start=false.
    /// </summary>
    public static string BusyboxImage(string tag)
    {
        var dir = Directory.CreateTempSubdirectory("beemesh-busybox-");
        try
        {
            Directory.CreateDirectory(Path.Combine(dir.FullName, "bin"));
            File.Copy("/bin/busybox", Path.Combine(dir.FullName, "bin", "busybox"));
            File.CreateSymbolicLink(Path.Combine(dir.FullName, "bin", "sh"), "busybox");
            string tar = Path.Combine(dir.FullName, "..", dir.Name + ".tar");
            var packed = Run("tar", ["-C", dir.FullName, "-cf", tar, "."]);
            Assert.True(packed.Exit == 0, packed.Err);
            var imported = Run("podman", ["import", tar, tag]);
            File.Delete(tar);
            Assert.True(imported.Exit == 0, imported.Err);
            return tag;
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
