using System.Runtime.InteropServices;

namespace Beemesh.Interop;

/// <summary>
/// execv(2) for a .NET process: replaces the process image, keeping its pid, parent, environment
/// and open descriptors. Compiled into beemesh-slirp (the sandbox launcher) and the beemesh CLI
/// (which hands the sidecar role to beemesh-sidecar).
/// </summary>
internal static partial class ExecV
{
    /// <summary>
    /// Runs <paramref name="path"/> with <paramref name="argv"/> and, when <paramref name="environment"/>
    /// is given, exactly those <c>NAME=VALUE</c> entries as its environment (execve), else this
    /// process's native environment (execv); returns errno, and only when the exec failed.
    /// </summary>
    public static int Run(string path, string[] argv, string[]? environment = null)
    {
        // NULL-terminated arrays of C strings that live until the call.
        IntPtr[] args = ToNative(argv);
        IntPtr[]? env = environment is null ? null : ToNative(environment);
        try
        {
            if (env is null)
            {
                NativeExecV(path, args);
            }
            else
            {
                NativeExecVE(path, args, env);
            }

            return Marshal.GetLastPInvokeError();
        }
        finally
        {
            Free(args);
            if (env is not null)
            {
                Free(env);
            }
        }
    }

    /// <summary>The managed view of this process's environment as <c>NAME=VALUE</c> entries.</summary>
    public static string[] ManagedEnvironment()
    {
        var entries = new List<string>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            entries.Add($"{e.Key}={e.Value}");
        }

        return [.. entries];
    }

    private static IntPtr[] ToNative(string[] strings)
    {
        var handles = new IntPtr[strings.Length + 1];
        for (int i = 0; i < strings.Length; i++)
        {
            handles[i] = Marshal.StringToCoTaskMemUTF8(strings[i]);
        }

        return handles;
    }

    private static void Free(IntPtr[] handles)
    {
        foreach (IntPtr h in handles)
        {
            if (h != IntPtr.Zero)
            {
                Marshal.FreeCoTaskMem(h);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "execv", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int NativeExecV(string path, IntPtr[] argv);

    [LibraryImport("libc", EntryPoint = "execve", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int NativeExecVE(string path, IntPtr[] argv, IntPtr[] envp);
}
