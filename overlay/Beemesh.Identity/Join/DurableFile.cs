using System.Runtime.InteropServices;
using System.Text;

namespace Beemesh.Identity.Join;

/// <summary>
/// Crash-safe file replacement: write a temporary file, fsync it, rename it over the target, then
/// fsync the directory so the rename itself survives a power loss (rename(2) is atomic, but only
/// durable once the directory entry is on disk).
/// </summary>
internal static partial class DurableFile
{
    // O_RDONLY | O_CLOEXEC, the same values on every Linux architecture (O_DIRECTORY is not: it
    // differs between x86-64 and arm64, and a read-only open of a directory needs no flag).
    private const int ReadOnlyCloseOnExec = 0x80000;

    /// <summary>Replaces <paramref name="path"/> with <paramref name="contents"/>, created with <paramref name="mode"/>.</summary>
    public static void Write(string path, ReadOnlySpan<byte> contents, UnixFileMode mode)
    {
        string temp = path + ".tmp";
        File.Delete(temp);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode };
        using (var stream = new FileStream(temp, options))
        {
            stream.Write(contents);
            stream.Flush(flushToDisk: true);
        }

        File.SetUnixFileMode(temp, mode);
        File.Move(temp, path, overwrite: true);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Writes <paramref name="text"/> as ASCII/UTF-8 (see <see cref="Write(string, ReadOnlySpan{byte}, UnixFileMode)"/>).</summary>
    public static void WriteText(string path, string text, UnixFileMode mode) => Write(path, Encoding.UTF8.GetBytes(text), mode);

    /// <summary>fsync(2) on a directory, so renames and creations in it are durable.</summary>
    public static void SyncDirectory(string directory)
    {
        int fd = Open(directory, ReadOnlyCloseOnExec);
        if (fd < 0)
        {
            throw new IOException($"cannot open {directory} to sync it (errno {Marshal.GetLastPInvokeError()})");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"fsync of {directory} failed (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
