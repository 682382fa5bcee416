using System.Runtime.InteropServices;

namespace Beemesh.Spiffe.X509;

/// <summary>
/// Keeps the machine's trust store (the file named by SSL_CERT_FILE and the directories named by
/// SSL_CERT_DIR, by default /etc/ssl/certs) out of this process's TLS.
/// <para>
/// On Linux the platform consults that store in every certificate chain build, whatever the trust
/// mode: with custom root trust its roots are not anchors, but they are still loaded, and the
/// platform reloads them synchronously inside whichever chain build comes first once five minutes
/// have passed (or at once when the file or directory changes), while every other chain build of
/// the process waits for that reload. In between, every chain build stats the file and each
/// directory. SPIFFE trusts only the trust domain's bundles, so a process whose TLS is all SPIFFE
/// loses nothing when that store is empty, and then no handshake ever reads it.
/// </para>
/// <para>
/// The platform reads the two variables from the native environment once, at its first chain
/// build, so <see cref="UseEmptyStore"/> has to run before any certificate work of the process.
/// Child processes (a workload's command) keep the variables as they were.
/// </para>
/// </summary>
public static class PlatformTrustStore
{
    /// <summary>The variable naming the machine's trust file.</summary>
    public const string FileVariable = "SSL_CERT_FILE";

    /// <summary>The variable naming the machine's trust directories (separated by ':').</summary>
    public const string DirectoryVariable = "SSL_CERT_DIR";

    /// <summary>
    /// Sets SSL_CERT_FILE and SSL_CERT_DIR to empty values in this process's native environment, which
    /// the platform reads as "no file, no directory" (it falls back to /etc/ssl/certs only when
    /// SSL_CERT_DIR is unset). The managed view of the environment, which child processes inherit,
    /// keeps the values from before. Returns false (and changes nothing) off Linux or when the
    /// native environment could not be changed. Call it first thing in Main: the platform reads the
    /// variables at the process's first chain build, and later calls change nothing for it.
    /// </summary>
    public static bool UseEmptyStore()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        // Listing the variables makes the runtime copy the native environment into its own table,
        // which is what child processes are given: the copy is taken now, before the native values
        // change below, and the runtime never reads the native environment again.
        _ = Environment.GetEnvironmentVariables();
        return SetNative(FileVariable, string.Empty, 1) == 0 && SetNative(DirectoryVariable, string.Empty, 1) == 0;
    }

    /// <summary>The variable as the native environment (and so the platform's TLS library) holds it, or null when unset.</summary>
    public static string? GetNative(string variable)
    {
        ArgumentException.ThrowIfNullOrEmpty(variable);
        return OperatingSystem.IsLinux() ? Marshal.PtrToStringUTF8(GetNativeRaw(variable)) : Environment.GetEnvironmentVariable(variable);
    }

    [DllImport("libc", EntryPoint = "setenv", SetLastError = true)]
    private static extern int SetNative([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);

    [DllImport("libc", EntryPoint = "getenv")]
    private static extern IntPtr GetNativeRaw([MarshalAs(UnmanagedType.LPUTF8Str)] string name);
}
