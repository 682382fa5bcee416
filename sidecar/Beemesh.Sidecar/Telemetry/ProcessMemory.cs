using System.Globalization;

namespace Beemesh.Sidecar.Telemetry;

/// <summary>
/// What the process's memory is made of, as the process itself sees it: the GC's heap and commit
/// (which <c>/proc/PID/smaps</c> cannot tell apart from other anonymous memory), and the kernel's
/// resident-set split and thread count from <c>/proc/self/status</c>. <c>beemesh run --debug</c>
/// logs it every 10 s, and <c>scripts/bench-mem</c> reads that line next to the process's smaps.
/// </summary>
public sealed record ProcessMemory
{
    /// <summary>Bytes the GC counts as allocated now (live objects and garbage not collected yet).</summary>
    public long GcHeapBytes { get; init; }

    /// <summary>Bytes the GC had committed at its last collection (heap plus bookkeeping); 0 before the first one.</summary>
    public long GcCommittedBytes { get; init; }

    /// <summary>Bytes of free space inside the GC heap after the last GC.</summary>
    public long GcFragmentedBytes { get; init; }

    /// <summary>
    /// Per generation at the last collection (gen0, gen1, gen2, large objects, pinned objects): its
    /// size and the free space inside it, in bytes. Empty before the first collection.
    /// </summary>
    public IReadOnlyList<(long Size, long Fragmented)> GcGenerations { get; init; } = [];

    /// <summary>GCs of every generation so far.</summary>
    public int Gen0Collections { get; init; }

    /// <summary>Resident set, in bytes (<c>VmRSS</c>); -1 when unknown.</summary>
    public long ResidentBytes { get; init; } = -1;

    /// <summary>Resident anonymous memory, in bytes (<c>RssAnon</c>); -1 when unknown.</summary>
    public long ResidentAnonymousBytes { get; init; } = -1;

    /// <summary>Resident file-backed memory, in bytes (<c>RssFile</c>); -1 when unknown.</summary>
    public long ResidentFileBytes { get; init; } = -1;

    /// <summary>Threads of the process (<c>Threads</c>); -1 when unknown.</summary>
    public int Threads { get; init; } = -1;

    /// <summary>Takes a snapshot of this process.</summary>
    public static ProcessMemory Current()
    {
        GCMemoryInfo gc = GC.GetGCMemoryInfo();
        string status;
        try
        {
            status = File.ReadAllText("/proc/self/status");
        }
        catch (IOException)
        {
            status = string.Empty;
        }
        catch (UnauthorizedAccessException)
        {
            status = string.Empty;
        }

        return FromStatus(status) with
        {
            GcHeapBytes = GC.GetTotalMemory(forceFullCollection: false),
            GcCommittedBytes = gc.TotalCommittedBytes,
            GcFragmentedBytes = gc.FragmentedBytes,
            GcGenerations = Generations(gc),
            Gen0Collections = GC.CollectionCount(0),
        };
    }

    /// <summary>The kernel's fields of a <c>/proc/PID/status</c> text (sizes there are in kB); missing ones stay -1.</summary>
    public static ProcessMemory FromStatus(string status)
    {
        ArgumentNullException.ThrowIfNull(status);
        long resident = -1, anonymous = -1, file = -1;
        int threads = -1;
        foreach (string line in status.Split('\n'))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                continue;
            }

            string key = line[..colon];
            string value = line[(colon + 1)..].Trim();
            if (value.EndsWith(" kB", StringComparison.Ordinal))
            {
                value = value[..^3].TrimEnd();
            }

            if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long number))
            {
                continue;
            }

            switch (key)
            {
                case "VmRSS": resident = number * 1024; break;
                case "RssAnon": anonymous = number * 1024; break;
                case "RssFile": file = number * 1024; break;
                case "Threads": threads = (int)Math.Min(number, int.MaxValue); break;
            }
        }

        return new ProcessMemory { ResidentBytes = resident, ResidentAnonymousBytes = anonymous, ResidentFileBytes = file, Threads = threads };
    }

    /// <summary>
    /// One line, sizes in KiB: <c>gc_heap_kib=… gc_committed_kib=… gc_fragmented_kib=… gen0_collections=… rss_kib=… rss_anon_kib=… rss_file_kib=… threads=…</c>,
    /// then, after a collection, <c>gc_generations_kib=gen0:SIZE/FREE,…,poh:SIZE/FREE</c>.
    /// </summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"gc_heap_kib={GcHeapBytes / 1024} gc_committed_kib={GcCommittedBytes / 1024} gc_fragmented_kib={GcFragmentedBytes / 1024} gen0_collections={Gen0Collections} " +
        $"rss_kib={Kib(ResidentBytes)} rss_anon_kib={Kib(ResidentAnonymousBytes)} rss_file_kib={Kib(ResidentFileBytes)} threads={Threads}")
        + (GcGenerations.Count > 0 ? " gc_generations_kib=" + GenerationsKib(GcGenerations) : string.Empty);

    private static (long Size, long Fragmented)[] Generations(GCMemoryInfo gc)
    {
        ReadOnlySpan<GCGenerationInfo> info = gc.GenerationInfo;
        var generations = new (long, long)[info.Length];
        for (int i = 0; i < info.Length; i++)
        {
            generations[i] = (info[i].SizeAfterBytes, info[i].FragmentationAfterBytes);
        }

        return generations;
    }

    private static string GenerationsKib(IReadOnlyList<(long Size, long Fragmented)> generations)
    {
        string[] names = ["gen0", "gen1", "gen2", "loh", "poh"];
        var text = new System.Text.StringBuilder();
        for (int i = 0; i < generations.Count; i++)
        {
            string name = i < names.Length ? names[i] : "gen" + i.ToString(CultureInfo.InvariantCulture);
            text.Append(i > 0 ? "," : string.Empty).Append(name).Append(':')
                .Append((generations[i].Size / 1024).ToString(CultureInfo.InvariantCulture)).Append('/')
                .Append((generations[i].Fragmented / 1024).ToString(CultureInfo.InvariantCulture));
        }

        return text.ToString();
    }

    private static long Kib(long bytes) => bytes < 0 ? -1 : bytes / 1024;
}
