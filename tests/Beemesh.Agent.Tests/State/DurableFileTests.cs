using Beemesh.Identity.Storage;
using System.Text;
using Beemesh.Agent.Policies;
using Beemesh.Agent.State;
using Beemesh.Agent.Workloads;
using Beemesh.Agent.Tests.Policies;

namespace Beemesh.Agent.Tests.State;

public sealed class DurableFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bm-df-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_write_replaces_the_whole_file_owner_only_and_leaves_no_temporary_file()
    {
        string path = Path.Combine(_dir, "x.json");
        DurableFile.Write(path, "first, and longer than the second"u8);
        DurableFile.Write(path, "second"u8);

        Assert.Equal("second", Encoding.UTF8.GetString(DurableFile.Read(path)!));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(["x.json"], Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public void A_missing_file_reads_as_null()
    {
        Assert.Null(DurableFile.Read(Path.Combine(_dir, "absent.json")));
    }

    [Fact]
    public void A_partial_temporary_file_left_by_a_crash_is_ignored_and_removed()
    {
        // A crash between writing the temporary file and the rename leaves the target as it was.
        var store = new PolicyStore(TimeProvider.System, Path.Combine(_dir, "policies.json"));
        Assert.True(store.Apply(PolicyTexts.TwoPolicies, out _, out _));
        File.WriteAllText(Path.Combine(_dir, "policies.json" + DurableFile.TemporaryInfix + "0badc0ffee00"), "{\"format\":1,\"version\":99,\"polic");

        var reloaded = new PolicyStore(TimeProvider.System, Path.Combine(_dir, "policies.json"));
        Assert.Equal(1, reloaded.Version);
        Assert.Equal(2, reloaded.Count);

        Assert.Equal(1, DurableFile.RemoveLeftovers(_dir));
        Assert.Equal(["policies.json"], Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData("{\"format\":1,\"version\":3,\"polic")]
    [InlineData("")]
    [InlineData("null")]
    [InlineData("{\"format\":2,\"version\":3,\"policies\":[]}")]
    [InlineData("{\"format\":1,\"version\":3,\"policies\":[{\"namespace\":\"a\",\"name\":\"b\",\"action\":\"DENY\",\"yaml\":\"kind: Nonsense\\n\"}]}")]
    public void A_corrupt_policy_file_refuses_the_store_naming_the_file(string contents)
    {
        string path = Path.Combine(_dir, "policies.json");
        File.WriteAllText(path, contents);
        var refused = Assert.Throws<InvalidOperationException>(() => new PolicyStore(TimeProvider.System, path));
        Assert.Contains(path, refused.Message, StringComparison.Ordinal);
        Assert.Contains("corrupt", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', refused.Message);
    }

    [Theory]
    [InlineData("{\"format\":1,\"version\":1,\"lastId\":1,\"addresses\":{},\"workloads\":[{\"record\":{\"id\":\"w7\"")]
    [InlineData("{\"format\":1,\"version\":1,\"lastId\":1,\"addresses\":{},\"workloads\":[{\"record\":{\"id\":\"w7\",\"name\":\"api\",\"namespace\":\"default\",\"pid\":1,\"meshAddress\":\"10.200.0.1\",\"tunnelEndpoint\":\"127.0.0.1:1\"},\"startTime\":1}]}")]
    [InlineData("{\"format\":1,\"version\":1,\"lastId\":9,\"addresses\":{},\"workloads\":[{\"record\":{\"id\":\"w7\",\"name\":\"API/x\",\"namespace\":\"default\",\"pid\":1,\"meshAddress\":\"10.200.0.1\",\"tunnelEndpoint\":\"127.0.0.1:1\"},\"startTime\":1}]}")]
    public void A_corrupt_workload_file_refuses_the_registry_naming_the_file(string contents)
    {
        string path = Path.Combine(_dir, "workloads.json");
        File.WriteAllText(path, contents);
        var refused = Assert.Throws<InvalidOperationException>(() => new WorkloadRegistry("example.org", "10.200.0.0/16", TimeProvider.System, "/proc", path));
        Assert.Contains(path, refused.Message, StringComparison.Ordinal);
    }
}
