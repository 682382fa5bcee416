using System.Runtime.InteropServices;
using System.Text;

namespace Beemesh.Identity.Storage;

/// <summary>
/// Crash-safe whole-file writes: the new contents go to a temporary file next to the target, which
/// is fsynced, renamed over the target (atomic on one file system) and followed by an fsync of the
/// directory (the rename is durable only once the directory entry is on disk), so after a crash or
/// power loss the target holds either the old or the new contents, never a mix. Temporary files a
/// crash left behind (<c>NAME.tmp-*</c>) are never read and are removed by <see cref="RemoveLeftovers"/>.
/// Used for the agent's state, the join token store and a joined node's credentials.
/// </summary>
public static partial class DurableFile
{
    /// <summary>Infix of temporary files: <c>NAME.tmp-RANDOM</c>.</summary>
    public const string TemporaryInfix = ".tmp-";

    /// <summary>Mode of files written without one: 0600.</summary>
    public const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    // O_RDONLY | O_CLOEXEC, the same values on every Linux architecture (O_DIRECTORY is not: it
    // differs between x86-64 and arm64, and a read-only open of a directory needs no flag).
    private const int ReadOnlyCloseOnExec = 0x80000;

    /// <summary>Replaces <paramref name="path"/> with <paramref name="contents"/> durably, created with <paramref name="mode"/>.</summary>
    public static void Write(string path, ReadOnlySpan<byte> contents, UnixFileMode mode = OwnerOnly)
    {
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full)!;
        string temporary = full + TemporaryInfix + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6));
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode };
            using (var stream = new FileStream(temporary, options))
            {
                stream.Write(contents);
                stream.Flush(flushToDisk: true);
            }

            // The umask may have narrowed the mode at creation; the target gets exactly the one asked for.
            File.SetUnixFileMode(temporary, mode);
            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(temporary);
            }
            catch (IOException)
            {
            }

            throw;
        }

        SyncDirectory(directory);
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8 (see <see cref="Write(string, ReadOnlySpan{byte}, UnixFileMode)"/>).</summary>
    public static void WriteText(string path, string text, UnixFileMode mode = OwnerOnly) => Write(path, Encoding.UTF8.GetBytes(text), mode);

    /// <summary>The contents of <paramref name="path"/>, or null when it does not exist.</summary>
    public static byte[]? Read(string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Deletes the temporary files an interrupted <see cref="Write"/> left in <paramref name="directory"/>; returns how many.</summary>
    public static int RemoveLeftovers(string directory)
    {
        int removed = 0;
        foreach (string file in Directory.EnumerateFiles(directory, "*" + TemporaryInfix + "*"))
        {
            File.Delete(file);
            removed++;
        }

        return removed;
    }

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
