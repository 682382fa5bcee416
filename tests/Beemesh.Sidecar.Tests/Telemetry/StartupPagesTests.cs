using System.IO.MemoryMappedFiles;
using Beemesh.Sidecar.Telemetry;

namespace Beemesh.Sidecar.Tests.Telemetry;

public sealed class StartupPagesTests
{
    // Abridged /proc/PID/smaps of a NativeAOT process: the executable's read-only data, code, a
    // RELRO page (read-only, relocated: anonymous), its data; a library; the vDSO; a deleted file;
    // an anonymous mapping; a shared read-only file mapping; a read-only mapping with no page resident.
    private const string Smaps = """
        55d0a0000000-55d0a0200000 r--p 00000000 fd:01 4242                       /opt/beemesh/beemesh-sidecar
        Size:               2048 kB
        Rss:                 900 kB
        Anonymous:             0 kB
        VmFlags: rd mr mw me dw sd
        55d0a0200000-55d0a0c00000 r-xp 00200000 fd:01 4242                       /opt/beemesh/beemesh-sidecar
        Size:              10240 kB
        Rss:                6000 kB
        Anonymous:             0 kB
        55d0a0c00000-55d0a0c40000 r--p 00c00000 fd:01 4242                       /opt/beemesh/beemesh-sidecar
        Size:                256 kB
        Rss:                 256 kB
        Anonymous:           256 kB
        55d0a0c40000-55d0a1000000 rw-p 00c40000 fd:01 4242                       /opt/beemesh/beemesh-sidecar
        Size:               3840 kB
        Rss:                3840 kB
        Anonymous:          3840 kB
        7f00a0000000-7f00a0400000 r-xp 00000000 fd:01 77                         /usr/lib/x86_64-linux-gnu/libcrypto.so.3
        Size:               4096 kB
        Rss:                2100 kB
        Anonymous:             0 kB
        7f00b0000000-7f00b0002000 r-xp 00000000 00:00 0                          [vdso]
        Size:                  8 kB
        Rss:                   8 kB
        Anonymous:             0 kB
        7f00c0000000-7f00c0010000 r-xp 00000000 00:01 99                         /memfd:code (deleted)
        Size:                 64 kB
        Rss:                  64 kB
        Anonymous:             0 kB
        7f00d0000000-7f00d0100000 r--p 00000000 00:00 0 
        Size:               1024 kB
        Rss:                1024 kB
        Anonymous:          1024 kB
        7f00e0000000-7f00e0010000 r--s 00000000 fd:01 88                         /var/lib/beemesh/some file.db
        Size:                 64 kB
        Rss:                  64 kB
        Anonymous:             0 kB
        7f00f0000000-7f00f0010000 r--p 00000000 fd:01 89                         /usr/lib/x86_64-linux-gnu/libz.so.1
        Size:                 64 kB
        Rss:                   0 kB
        Anonymous:             0 kB
        """;

    [Fact]
    public void Only_read_only_file_mappings_with_the_files_own_pages_are_chosen()
    {
        IReadOnlyList<StartupPages.Mapping> chosen = StartupPages.Select(Smaps);

        Assert.Equal(
            [
                new StartupPages.Mapping(0x55d0a0000000, 0x55d0a0200000, "/opt/beemesh/beemesh-sidecar", 900 * 1024),
                new StartupPages.Mapping(0x55d0a0200000, 0x55d0a0c00000, "/opt/beemesh/beemesh-sidecar", 6000 * 1024),
                new StartupPages.Mapping(0x7f00a0000000, 0x7f00a0400000, "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", 2100 * 1024),
                new StartupPages.Mapping(0x7f00e0000000, 0x7f00e0010000, "/var/lib/beemesh/some file.db", 64 * 1024),
            ],
            chosen);
    }

    [Fact]
    public void A_private_mapping_with_an_anonymous_page_or_no_anonymous_line_is_kept()
    {
        // Without an Anonymous line, whether the file still has every page cannot be told.
        const string smaps = "7f00a0000000-7f00a0400000 r-xp 00000000 fd:01 77 /usr/lib/libx.so\nRss: 100 kB\n";
        Assert.Empty(StartupPages.Select(smaps));
        Assert.Empty(StartupPages.Select(smaps + "Anonymous: 4 kB\n"));
        Assert.Single(StartupPages.Select(smaps + "Anonymous: 0 kB\n"));
    }

    [Fact]
    public void The_choice_can_be_narrowed_by_path_and_odd_text_is_ignored()
    {
        Assert.Single(StartupPages.Select(Smaps, path => path.EndsWith("libcrypto.so.3", StringComparison.Ordinal)));
        Assert.Empty(StartupPages.Select("not smaps\nzz-yy r--p\n\nRss: lots kB\n"));
        Assert.Empty(StartupPages.Select(string.Empty));
    }

    [Fact]
    public void Released_pages_leave_the_resident_set_and_read_back_the_same()
    {
        if (!File.Exists("/proc/self/smaps"))
        {
            Console.WriteLine("skipped: no /proc/self/smaps on this system");
            return;
        }

        string path = Path.Combine(Path.GetTempPath(), $"beemesh-startup-pages-{Guid.NewGuid():N}");
        byte[] content = new byte[256 * 1024];
        new Random(42).NextBytes(content);
        File.WriteAllBytes(path, content);
        try
        {
            using var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            using var view = file.CreateViewAccessor(0, content.Length, MemoryMappedFileAccess.Read);
            Assert.Equal(content, ReadAll(view, content.Length));
            Assert.True(ResidentKib(path) > 0);

            StartupPages.Result result = StartupPages.Release(p => p == path);

            Assert.Equal(1, result.Mappings);
            Assert.Equal(0, result.Failed);
            Assert.True(result.ResidentBytes > 0);
            Assert.Equal(0, ResidentKib(path));
            Assert.Equal(content, ReadAll(view, content.Length));
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static byte[] ReadAll(MemoryMappedViewAccessor view, int length)
    {
        byte[] read = new byte[length];
        view.ReadArray(0, read, 0, length);
        return read;
    }

    // Resident KiB of this process's mappings of one file.
    private static long ResidentKib(string path)
    {
        long kib = 0;
        bool ours = false;
        foreach (string line in File.ReadAllLines("/proc/self/smaps"))
        {
            if (line.Length > 0 && char.IsAsciiHexDigit(line[0]) && line.Contains('-', StringComparison.Ordinal) && line.Contains(' ', StringComparison.Ordinal))
            {
                ours = line.EndsWith(path, StringComparison.Ordinal);
            }
            else if (ours && line.StartsWith("Rss:", StringComparison.Ordinal))
            {
                kib += long.Parse(line["Rss:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return kib;
    }
}
