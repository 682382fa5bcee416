using System.Runtime.InteropServices;

namespace Beemesh.Interop;

/// <summary>
/// execv(2) for a .NET process: replaces the process image, keeping its pid, parent, environment
/// and open descriptors. Compiled into beemesh-slirp (the sandbox launcher) and the beemesh CLI
/// (which hands the sidecar role to beemesh-sidecar).
/// </summary>
internal static partial class ExecV
{
    /// <summary>Runs <paramref name="path"/> with <paramref name="argv"/>; returns errno, and only when the exec failed.</summary>
    public static int Run(string path, string[] argv)
    {
        // A NULL-terminated array of C strings that lives until the call.
        var handles = new IntPtr[argv.Length + 1];
        try
        {
            for (int i = 0; i < argv.Length; i++)
            {
                handles[i] = Marshal.StringToCoTaskMemUTF8(argv[i]);
            }

            NativeExecV(path, handles);
            return Marshal.GetLastPInvokeError();
        }
        finally
        {
            foreach (IntPtr h in handles)
            {
                if (h != IntPtr.Zero)
                {
                    Marshal.FreeCoTaskMem(h);
                }
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "execv", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int NativeExecV(string path, IntPtr[] argv);
}
