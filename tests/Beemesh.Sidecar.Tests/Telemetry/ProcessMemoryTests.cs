using Beemesh.Sidecar.Telemetry;

namespace Beemesh.Sidecar.Tests.Telemetry;

public sealed class ProcessMemoryTests
{
    [Fact]
    public void Status_fields_are_read_in_bytes()
    {
        const string status = "Name:\tbeemesh\nVmRSS:\t   33600 kB\nRssAnon:\t   13000 kB\nRssFile:\t   20600 kB\nRssShmem:\t       0 kB\nThreads:\t13\n";
        ProcessMemory memory = ProcessMemory.FromStatus(status);
        Assert.Equal(33600L * 1024, memory.ResidentBytes);
        Assert.Equal(13000L * 1024, memory.ResidentAnonymousBytes);
        Assert.Equal(20600L * 1024, memory.ResidentFileBytes);
        Assert.Equal(13, memory.Threads);
    }

    [Fact]
    public void Missing_or_odd_fields_stay_unknown()
    {
        ProcessMemory memory = ProcessMemory.FromStatus("VmRSS:\tlots kB\nThreads:\n");
        Assert.Equal(-1, memory.ResidentBytes);
        Assert.Equal(-1, memory.ResidentAnonymousBytes);
        Assert.Equal(-1, memory.Threads);
        Assert.Contains("rss_kib=-1", memory.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_current_process_has_a_heap_threads_and_a_resident_set()
    {
        byte[] kept = new byte[64 * 1024];
        GC.Collect();
        ProcessMemory memory = ProcessMemory.Current();
        Assert.True(memory.GcCommittedBytes > 0);
        Assert.True(memory.GcHeapBytes >= kept.Length);
        Assert.True(memory.Threads >= 1);
        Assert.True(memory.ResidentBytes > 0);
        Assert.True(memory.ResidentAnonymousBytes + memory.ResidentFileBytes <= memory.ResidentBytes);
        string line = memory.ToString();
        Assert.Matches(@"^gc_heap_kib=\d+ gc_committed_kib=\d+ gc_fragmented_kib=\d+ gen0_collections=\d+ rss_kib=\d+ rss_anon_kib=\d+ rss_file_kib=\d+ threads=\d+ gc_generations_kib=gen0:\d+/\d+,gen1:\d+/\d+,gen2:\d+/\d+,loh:\d+/\d+,poh:\d+/\d+$", line);
        Assert.Equal(5, memory.GcGenerations.Count);
    }

    [Fact]
    public void Generations_are_written_in_kib_and_left_out_before_a_collection()
    {
        var memory = new ProcessMemory { GcGenerations = [(4096, 1024), (0, 0), (2 * 1024 * 1024, 512 * 1024), (0, 0), (8192, 0)] };
        Assert.EndsWith(" gc_generations_kib=gen0:4/1,gen1:0/0,gen2:2048/512,loh:0/0,poh:8/0", memory.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("gc_generations_kib", new ProcessMemory().ToString(), StringComparison.Ordinal);
    }
}
