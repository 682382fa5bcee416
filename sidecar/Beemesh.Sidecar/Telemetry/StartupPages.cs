using System.Globalization;
using System.Runtime.InteropServices;

namespace Beemesh.Sidecar.Telemetry;

/// <summary>
/// Gives back the clean file pages a process touched while it started: the executable's code and
/// read-only data that start-up alone ran (argument parsing, the metadata rehydration, TLS and
/// Kestrel set-up), and those of the shared libraries. Each is a page of the page cache mapped into
/// this process; <c>madvise(MADV_DONTNEED)</c> unmaps it (it stays in the page cache, shared with
/// every other process of the same file), and a page needed again is mapped back on its next use
/// by a minor fault, from the page cache. An idle sidecar's resident set then holds what it uses,
/// not what its start-up used (loadtests/reports/memory.md).
/// </summary>
/// <remarks>
/// Only mappings whose content is the file's are released: read-only or read-execute, backed by a
/// regular file, and, for a private mapping, with no anonymous (copied-on-write) page, such as the
/// relocated pages of a RELRO segment, which the file cannot give back. Writable mappings are never
/// touched. <see cref="Select"/> is the choice (sans-IO, from the text of <c>/proc/PID/smaps</c>);
/// <see cref="Release"/> applies it to this process.
/// </remarks>
public static partial class StartupPages
{
    /// <summary>A mapping chosen for release: its address range and the resident bytes it held.</summary>
    /// <param name="Start">First address.</param>
    /// <param name="End">Address one past the last byte.</param>
    /// <param name="Path">The file it maps.</param>
    /// <param name="ResidentBytes">Its resident bytes when the smaps text was read (<c>Rss</c>).</param>
    public readonly record struct Mapping(ulong Start, ulong End, string Path, long ResidentBytes);

    /// <summary>What <see cref="Release"/> did.</summary>
    /// <param name="Mappings">Mappings released.</param>
    /// <param name="ResidentBytes">Resident bytes those mappings held before.</param>
    /// <param name="Failed">Mappings the kernel refused to release (locked, or gone meanwhile).</param>
    public readonly record struct Result(int Mappings, long ResidentBytes, int Failed);

    /// <summary>
    /// The mappings of a <c>/proc/PID/smaps</c> text whose resident pages are all the file's own:
    /// read-only or read-execute, of a regular file (a path that starts with <c>/</c> and is not
    /// deleted), with resident pages, and no anonymous page. <paramref name="include"/>, when given,
    /// narrows the choice by path.
    /// </summary>
    public static IReadOnlyList<Mapping> Select(string smaps, Func<string, bool>? include = null)
    {
        ArgumentNullException.ThrowIfNull(smaps);
        var chosen = new List<Mapping>();
        ulong start = 0, end = 0;
        string perms = string.Empty, path = string.Empty;
        long rss = -1, anonymous = -1;
        bool inMapping = false;

        void Flush()
        {
            if (!inMapping)
            {
                return;
            }

            bool readOnly = perms.Length == 4 && perms[0] == 'r' && perms[1] == '-' && (perms[2] == '-' || perms[2] == 'x');
            bool regularFile = path.StartsWith('/') && !path.EndsWith(" (deleted)", StringComparison.Ordinal);
            // A private mapping's written page is anonymous; a shared one's is the file's own.
            bool fileContent = perms.Length == 4 && (perms[3] == 's' || anonymous == 0);
            if (readOnly && regularFile && fileContent && rss > 0 && (include is null || include(path)))
            {
                chosen.Add(new Mapping(start, end, path, rss * 1024));
            }
        }

        foreach (string raw in smaps.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.Length == 0)
            {
                continue;
            }

            if (TryParseHeader(line, out ulong s, out ulong e, out string p, out string name))
            {
                Flush();
                inMapping = true;
                start = s;
                end = e;
                perms = p;
                path = name;
                rss = -1;
                anonymous = -1;
            }
            else if (line.StartsWith("Rss:", StringComparison.Ordinal))
            {
                rss = ParseKib(line);
            }
            else if (line.StartsWith("Anonymous:", StringComparison.Ordinal))
            {
                anonymous = ParseKib(line);
            }
        }

        Flush();
        return chosen;
    }

    /// <summary>
    /// Releases, in this process, the mappings <see cref="Select"/> chooses from
    /// <c>/proc/self/smaps</c>. Safe at any time (no page that differs from its file is released);
    /// meant once start-up is over. Returns zeros where <c>/proc</c> cannot be read.
    /// </summary>
    public static Result Release(Func<string, bool>? include = null)
    {
        string smaps;
        try
        {
            smaps = File.ReadAllText("/proc/self/smaps");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return default;
        }

        int released = 0, failed = 0;
        long bytes = 0;
        foreach (Mapping mapping in Select(smaps, include))
        {
            if (madvise((nint)mapping.Start, (nuint)(mapping.End - mapping.Start), MADV_DONTNEED) == 0)
            {
                released++;
                bytes += mapping.ResidentBytes;
            }
            else
            {
                failed++;
            }
        }

        return new Result(released, bytes, failed);
    }

    private const int MADV_DONTNEED = 4;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(nint address, nuint length, int advice);

    // "7f1c2a000000-7f1c2a021000 r--p 00000000 fd:01 1234   /usr/lib/x.so"
    private static bool TryParseHeader(string line, out ulong start, out ulong end, out string perms, out string path)
    {
        start = end = 0;
        perms = path = string.Empty;
        int dash = line.IndexOf('-', StringComparison.Ordinal);
        int space = line.IndexOf(' ', StringComparison.Ordinal);
        if (dash <= 0 || space <= dash
            || !ulong.TryParse(line.AsSpan(0, dash), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out start)
            || !ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out end))
        {
            return false;
        }

        // Fields: range, perms, offset, device, inode, then the path (which may hold spaces).
        string[] fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 5 || fields[1].Length != 4)
        {
            return false;
        }

        perms = fields[1];
        path = fields.Length == 6 ? fields[5].Trim() : string.Empty;
        return true;
    }

    private static long ParseKib(string line)
    {
        ReadOnlySpan<char> value = line.AsSpan(line.IndexOf(':', StringComparison.Ordinal) + 1).Trim();
        int unit = value.IndexOf(' ');
        if (unit > 0)
        {
            value = value[..unit];
        }

        return long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long kib) ? kib : -1;
    }
}
