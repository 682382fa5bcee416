using System.Runtime.InteropServices;

namespace Beemesh.Agent.State;

/// <summary>
/// Crash-safe whole-file writes: the new contents go to a temporary file next to the target, which
/// is fsynced, renamed over the target (atomic on one file system) and followed by an fsync of the
/// directory, so after a crash or power loss the target holds either the old or the new contents,
/// never a mix. Temporary files a crash left behind (<c>NAME.tmp-*</c>) are never read and are removed
/// by <see cref="RemoveLeftovers"/>.
/// </summary>
internal static partial class DurableFile
{
    /// <summary>Infix of temporary files: <c>NAME.tmp-RANDOM</c>.</summary>
    public const string TemporaryInfix = ".tmp-";

    private const int ReadOnly = 0;
    private const int Directory = 0x10000; // O_DIRECTORY
    private const int CloseOnExec = 0x80000; // O_CLOEXEC

    /// <summary>Replaces <paramref name="path"/> with <paramref name="contents"/> (mode 0600) durably.</summary>
    public static void Write(string path, ReadOnlySpan<byte> contents)
    {
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full)!;
        string temporary = full + TemporaryInfix + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6));
        try
        {
            var options = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            };
            using (var stream = new FileStream(temporary, options))
            {
                stream.Write(contents);
                stream.Flush(flushToDisk: true);
            }

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
        foreach (string file in System.IO.Directory.EnumerateFiles(directory, "*" + TemporaryInfix + "*"))
        {
            File.Delete(file);
            removed++;
        }

        return removed;
    }

    /// <summary>Makes a rename in <paramref name="directory"/> durable (fsync(2) of the directory itself).</summary>
    private static void SyncDirectory(string directory)
    {
        int fd = Open(directory, ReadOnly | Directory | CloseOnExec);
        if (fd < 0)
        {
            throw new IOException($"cannot open {directory} to sync it: errno {Marshal.GetLastPInvokeError()}");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"fsync of {directory} failed: errno {Marshal.GetLastPInvokeError()}");
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
