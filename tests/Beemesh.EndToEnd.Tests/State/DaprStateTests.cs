using System.Diagnostics;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.State;

/// <summary>
/// Dapr's state API as a <c>beemesh run --name</c> workload sees it: inside its own network
/// namespace on 127.0.0.1:3500 and :50001, found through the DAPR_* variables, used by the official
/// .NET SDK (unmodified) and by plain curl.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class DaprStateTests(ITestOutputHelper output) : MeshAgentTest
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    /// <summary>The Dapr app built next to the tests (a project reference copies it here).</summary>
    private static string AppPath => Path.Combine(AppContext.BaseDirectory, "Beemesh.DaprStateApp.dll");

    [SkippableFact]
    public async Task The_official_dotnet_sdk_saves_gets_checks_etags_deletes_bulks_transacts_and_expires()
    {
        BeemeshEnvironment.RequireReady("dotnet");
        Skip.If(Agent is null, "the agent could not be started");
        Assert.True(File.Exists(AppPath), $"{AppPath} is missing");
        var run = await BeemeshRun.RunAsync(
            [.. Agent!.Workload("orders"), "--state", "statestore=eventual"],
            $"""
            echo "env=$DAPR_HTTP_PORT,$DAPR_GRPC_PORT,$DAPR_GRPC_ENDPOINT,$APP_ID"
            dotnet {AppPath}; echo "app=$?"
            """,
            Timeout);
        output.WriteLine(run.ToString());

        string[] lines = run.Stdout.Split('\n');
        Assert.Contains("env=3500,50001,http://127.0.0.1:50001,orders", lines);
        foreach (string check in new[] { "save-get", "etag", "first-write", "delete", "bulk", "transaction", "ttl", "scoped-key", "unknown-store" })
        {
            Assert.Contains($"ok {check}", lines);
        }

        Assert.Contains("app=0", lines);
        Assert.Equal(0, run.ExitCode);
    }

    [SkippableFact]
    public async Task Curl_gets_daprs_statuses_etags_and_error_codes_over_http()
    {
        BeemeshEnvironment.RequireReady("curl");
        Skip.If(Agent is null, "the agent could not be started");
        var run = await BeemeshRun.RunAsync(
            Agent!.Workload("carts"),
            """
            api=http://127.0.0.1:$DAPR_HTTP_PORT/v1.0/state
            j='content-type: application/json'
            echo "save=$(curl -s -o /dev/null -w '%{http_code}' -H "$j" -d '[{"key":"cart","value":{"items":2}}]' $api/statestore)"
            echo "get=$(curl -s $api/statestore/cart)"
            etag=$(curl -s -D - -o /dev/null $api/statestore/cart | tr -d '\r' | awk 'tolower($1)=="etag:" {print $2}')
            echo "etag-set=$([ -n "$etag" ] && echo yes)"
            echo "resave=$(curl -s -o /dev/null -w '%{http_code}' -H "$j" -d '[{"key":"cart","value":{"items":3}}]' $api/statestore)"
            echo "stale=$(curl -s -w ' %{http_code}' -H "$j" -d '[{"key":"cart","value":{"items":4},"etag":"'$etag'"}]' $api/statestore)"
            echo "first-write=$(curl -s -o /dev/null -w '%{http_code}' -H "$j" -d '[{"key":"cart","value":1,"options":{"concurrency":"first-write"}}]' $api/statestore)"
            echo "missing=$(curl -s -o /dev/null -w '%{http_code}' $api/statestore/nothing)"
            echo "no-store=$(curl -s -w ' %{http_code}' $api/nosuch/cart)"
            echo "bad-json=$(curl -s -w ' %{http_code}' -H "$j" -d '[{"key":' $api/statestore)"
            echo "scoped=$(curl -s -w ' %{http_code}' -H "$j" -d '[{"key":"other||cart","value":1}]' $api/statestore)"
            echo "bulk=$(curl -s -H "$j" -d '{"keys":["cart","none"]}' $api/statestore/bulk)"
            echo "tx=$(curl -s -w ' %{http_code}' -H "$j" -d '{"operations":[{"operation":"delete","request":{"key":"cart","etag":"'$etag'"}}]}' $api/statestore/transaction)"
            d=$(mktemp -d)
            { printf '[{"key":"big","value":"'; head -c 10485760 /dev/zero | tr '\0' 'x'; printf '"}]'; } > $d/big.json
            echo "big=$(curl -s -w ' %{http_code}' -H "$j" --data-binary @$d/big.json $api/statestore)"
            rm -rf $d
            echo "delete=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE $api/statestore/cart)"
            echo "after=$(curl -s -o /dev/null -w '%{http_code}' $api/statestore/cart)"
            """,
            Timeout);
        output.WriteLine(run.ToString());

        string[] lines = run.Stdout.Split('\n');
        Assert.Contains("save=204", lines);
        Assert.Contains("get={\"items\":2}", lines);
        Assert.Contains("etag-set=yes", lines);
        Assert.Contains("resave=204", lines);
        Assert.Contains(lines, l => l.StartsWith("stale={\"errorCode\":\"ERR_STATE_SAVE\"", StringComparison.Ordinal) && l.EndsWith(" 409", StringComparison.Ordinal));
        Assert.Contains("first-write=409", lines);
        Assert.Contains("missing=204", lines);
        Assert.Contains(lines, l => l.StartsWith("no-store={\"errorCode\":\"ERR_STATE_STORE_NOT_FOUND\"", StringComparison.Ordinal) && l.EndsWith(" 400", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("bad-json={\"errorCode\":\"ERR_MALFORMED_REQUEST\"", StringComparison.Ordinal) && l.EndsWith(" 400", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("scoped={\"errorCode\":\"ERR_MALFORMED_REQUEST\"", StringComparison.Ordinal) && l.EndsWith(" 400", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("bulk=[{\"key\":\"cart\",\"data\":{\"items\":3},\"etag\":", StringComparison.Ordinal) && l.EndsWith(",{\"key\":\"none\"}]", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("tx={\"errorCode\":\"ERR_STATE_TRANSACTION\"", StringComparison.Ordinal) && l.EndsWith(" 500", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("big={\"errorCode\":\"ERR_REQUEST_TOO_LARGE\"", StringComparison.Ordinal) && l.EndsWith(" 413", StringComparison.Ordinal));
        Assert.Contains("delete=204", lines);
        Assert.Contains("after=204", lines);
        Assert.Equal(0, run.ExitCode);
    }

    [SkippableFact]
    public async Task Three_strong_replicas_agree_survive_a_killed_leader_and_take_it_back()
    {
        BeemeshEnvironment.RequireReady("curl");
        Skip.If(Agent is null, "the agent could not be started");
        using var processes = new BeemeshProcesses(output);
        string dir = Directory.CreateTempSubdirectory("bm-strong-").FullName;
        try
        {
            // Each replica's command runs the lines the test writes to its FIFO, inside its own namespace.
            Process Start(string replica)
            {
                string fifo = Path.Combine(dir, replica);
                if (!File.Exists(fifo))
                {
                    using Process mkfifo = Process.Start("mkfifo", fifo)!;
                    mkfifo.WaitForExit();
                    Assert.Equal(0, mkfifo.ExitCode);
                }

                return processes.Start([
                    "run", .. Agent!.Workload("ledger"), "--state", "statestore=strong", "--", "sh", "-c",
                    $"echo {replica}-ready; while true; do if read -r line < {fifo}; then eval \"$line\"; fi; done"]);
            }

            async Task<string> AskAsync(Process replica, string name, string tag, string command)
            {
                await File.WriteAllTextAsync(Path.Combine(dir, name), command + "\n");
                Assert.True(await processes.WaitForLineAsync(replica, tag + "=", Timeout), $"{name} did not answer {tag}");
                return processes.Lines(replica).Last(l => l.StartsWith(tag + "=", StringComparison.Ordinal))[(tag.Length + 1)..];
            }

            const string Api = "http://127.0.0.1:3500/v1.0/state/statestore";
            Task<string> SaveAsync(Process replica, string name, string tag, string value) => AskAsync(replica, name, tag,
                $"echo \"{tag}=$(curl -s -w ' %{{http_code}}' -H 'content-type: application/json' -d '[{{\"key\":\"k\",\"value\":\"{value}\"}}]' {Api})\"");
            Task<string> GetAsync(Process replica, string name, string tag) => AskAsync(replica, name, tag,
                $"echo \"{tag}=$(curl -s -D {dir}/{name}.h {Api}/k) etag=$(tr -d '\\r' < {dir}/{name}.h | awk 'tolower($1)==\"etag:\" {{print $2}}')\"");

            var replicas = new Dictionary<string, Process>();
            foreach (string name in new[] { "r1", "r2", "r3" })
            {
                replicas[name] = Start(name);
                Assert.True(await processes.WaitForLineAsync(replicas[name], name + "-ready", Timeout), $"{name} did not start");
            }

            Assert.Equal(" 204", await SaveAsync(replicas["r1"], "r1", "w1", "v1"));
            string onTwo = await GetAsync(replicas["r2"], "r2", "g1");
            Assert.StartsWith("\"v1\" etag=", onTwo, StringComparison.Ordinal);
            Assert.Equal(onTwo, await GetAsync(replicas["r3"], "r3", "g2"));

            // The leader is the replica that announced the highest term; kill -9 it (sidecar and command).
            static long Term(string line) => long.Parse(line[(line.LastIndexOf("(term ", StringComparison.Ordinal) + 6)..^1], System.Globalization.CultureInfo.InvariantCulture);
            string leader = replicas.MaxBy(r => processes.Lines(r.Value).Where(l => l.Contains(" leads (term ", StringComparison.Ordinal)).Select(Term).DefaultIfEmpty(0).Max()).Key;
            ProcessTree.Kill(replicas[leader]);
            await replicas[leader].WaitForExitAsync();
            string[] alive = [.. replicas.Keys.Where(k => k != leader)];

            Assert.Equal(" 204", await SaveAsync(replicas[alive[0]], alive[0], "w2", "v2"));
            Assert.StartsWith("\"v2\" etag=", await GetAsync(replicas[alive[1]], alive[1], "g3"), StringComparison.Ordinal);

            // The killed replica restarts from its own log and endpoint; it serves the latest value,
            // and with one of the others gone the group still commits through it.
            replicas[leader] = Start(leader);
            Assert.True(await processes.WaitForLineAsync(replicas[leader], leader + "-ready", Timeout), "the restarted replica did not start");
            Assert.StartsWith("\"v2\" etag=", await GetAsync(replicas[leader], leader, "g4"), StringComparison.Ordinal);
            ProcessTree.Kill(replicas[alive[0]]);
            await replicas[alive[0]].WaitForExitAsync();
            Assert.Equal(" 204", await SaveAsync(replicas[leader], leader, "w3", "v3"));
            Assert.StartsWith("\"v3\" etag=", await GetAsync(replicas[alive[1]], alive[1], "g5"), StringComparison.Ordinal);

            // Two of three gone: a write fails with Dapr's error within its deadline instead of hanging,
            // either before it is proposed (no quorum: no leader) or after (the replica still led,
            // took the write into its log and then stepped down: its outcome is unknown).
            ProcessTree.Kill(replicas[alive[1]]);
            await replicas[alive[1]].WaitForExitAsync();
            string lost = await SaveAsync(replicas[leader], leader, "w4", "v4");
            Assert.StartsWith("{\"errorCode\":\"ERR_STATE_SAVE\"", lost, StringComparison.Ordinal);
            Assert.True(lost.Contains("no quorum", StringComparison.Ordinal) || lost.Contains("outcome is unknown", StringComparison.Ordinal), lost);
            Assert.EndsWith(" 500", lost, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [SkippableFact]
    public async Task Two_eventual_replicas_replicate_writes_deletes_and_catch_up_a_new_replica()
    {
        BeemeshEnvironment.RequireReady("curl");
        Skip.If(Agent is null, "the agent could not be started");
        using var processes = new BeemeshProcesses(output);
        string dir = Directory.CreateTempSubdirectory("bm-eventual-").FullName;
        try
        {
            // Each replica's command runs the lines the test writes to its FIFO, inside its own namespace.
            Process Start(string replica)
            {
                string fifo = Path.Combine(dir, replica);
                using (Process mkfifo = Process.Start("mkfifo", fifo)!)
                {
                    mkfifo.WaitForExit();
                    Assert.Equal(0, mkfifo.ExitCode);
                }

                return processes.Start([
                    "run", .. Agent!.Workload("kv"), "--state", "statestore=eventual", "--", "sh", "-c",
                    $"echo {replica}-ready; while true; do if read -r line < {fifo}; then eval \"$line\"; fi; done"]);
            }

            async Task<string> AskAsync(Process replica, string name, string tag, string command)
            {
                await File.WriteAllTextAsync(Path.Combine(dir, name), command + "\n");
                Assert.True(await processes.WaitForLineAsync(replica, tag + "=", Timeout), $"{name} did not answer {tag}");
                return processes.Lines(replica).Last(l => l.StartsWith(tag + "=", StringComparison.Ordinal))[(tag.Length + 1)..];
            }

            const string Api = "http://127.0.0.1:3500/v1.0/state/statestore";
            Task<string> SaveAsync(Process replica, string name, string tag, string key, string value) => AskAsync(replica, name, tag,
                $"echo \"{tag}=$(curl -s -w '%{{http_code}}' -H 'content-type: application/json' -d '[{{\"key\":\"{key}\",\"value\":\"{value}\"}}]' {Api})\"");
            Task<string> DeleteAsync(Process replica, string name, string tag, string key) => AskAsync(replica, name, tag,
                $"echo \"{tag}=$(curl -s -w '%{{http_code}}' -X DELETE {Api}/{key})\"");

            // Waits inside the replica until GET answers EXPECTED (a body, or "204" for absent). The
            // state API has no change feed to wait on, so this polls, every 50 ms for at most 15 s: a
            // push lands in milliseconds and an anti-entropy round comes every second, so the cap is
            // only there to end a broken run.
            Task<string> AwaitAsync(Process replica, string name, string tag, string key, string expected) => AskAsync(replica, name, tag,
                $"i=0; while [ $i -lt 300 ]; do v=$(curl -s -w '%{{http_code}}' {Api}/{key}); [ \"$v\" = '{expected}' ] && break; i=$((i+1)); sleep 0.05; done; echo \"{tag}=$v\"");

            Process r1 = Start("r1");
            Assert.True(await processes.WaitForLineAsync(r1, "r1-ready", Timeout), "r1 did not start");
            Process r2 = Start("r2");
            Assert.True(await processes.WaitForLineAsync(r2, "r2-ready", Timeout), "r2 did not start");
            Assert.Contains(processes.Lines(r2), l => l.Contains("eventual store statestore: replica 127.0.0.1:", StringComparison.Ordinal));

            // A write on one replica is read on the other, with the same ETag.
            Assert.Equal("204", await SaveAsync(r1, "r1", "w1", "k", "v1"));
            Assert.Equal("\"v1\"200", await AwaitAsync(r2, "r2", "g1", "k", "\"v1\"200"));
            Assert.Equal("204", await SaveAsync(r2, "r2", "w2", "other", "from-r2"));
            Assert.Equal("\"from-r2\"200", await AwaitAsync(r1, "r1", "g2", "other", "\"from-r2\"200"));

            // A delete travels as a tombstone.
            Assert.Equal("204", await DeleteAsync(r2, "r2", "d1", "k"));
            Assert.Equal("204", await AwaitAsync(r1, "r1", "g3", "k", "204"));

            // A replica started later has missed every push: an anti-entropy round brings it everything.
            Process r3 = Start("r3");
            Assert.True(await processes.WaitForLineAsync(r3, "r3-ready", Timeout), "r3 did not start");
            Assert.Equal("\"from-r2\"200", await AwaitAsync(r3, "r3", "g4", "other", "\"from-r2\"200"));
            Assert.Equal("204", await AwaitAsync(r3, "r3", "g5", "k", "204"));

            // The agent's metrics count the replication: read again after each sidecar report.
            const string Merged = "beemesh_state_eventual_entries_total{workload=\"kv.default\",event=\"merged\"}";
            using HttpClient admin = AgentAdmin.Client(Agent.Directory);
            double merged = (await AgentAdmin.MetricsAfterReportsAsync(admin, m => m.GetValueOrDefault(Merged) >= 3)).GetValueOrDefault(Merged);
            Assert.True(merged >= 3, $"merged entries in /metrics: {merged}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [SkippableFact]
    public async Task An_eventual_store_outlives_its_only_replica_exiting_and_the_next_one_reads_it()
    {
        BeemeshEnvironment.RequireReady("curl");
        Skip.If(Agent is null, "the agent could not be started");
        const string Api = "http://127.0.0.1:3500/v1.0/state/statestore";
        const string Json = "-H 'content-type: application/json'";
        const string Etag = "curl -s -D - -o /dev/null " + Api + "/cart | tr -d '\\r' | awk 'tolower($1)==\"etag:\" {print $2}'";
        var first = await BeemeshRun.RunAsync(
            [.. Agent!.Workload("api"), "--state", "statestore=eventual"],
            $$$"""
            echo "save=$(curl -s -w '%{http_code}' {{{Json}}} -d '[{"key":"cart","value":{"items":2}},{"key":"gone","value":1}]' {{{Api}}})"
            echo "ttl=$(curl -s -w '%{http_code}' {{{Json}}} -d '[{"key":"session","value":"s","metadata":{"ttlInSeconds":"600"}}]' {{{Api}}})"
            echo "delete=$(curl -s -w '%{http_code}' -X DELETE {{{Api}}}/gone)"
            echo "etag=$({{{Etag}}})"
            """,
            Timeout);
        output.WriteLine(first.ToString());
        Assert.Equal(0, first.ExitCode);
        string[] lines = first.Stdout.Split('\n');
        Assert.Contains("save=204", lines);
        Assert.Contains("ttl=204", lines);
        Assert.Contains("delete=204", lines);
        string etag = lines.Single(l => l.StartsWith("etag=", StringComparison.Ordinal))[5..];
        Assert.NotEmpty(etag);

        // Only the sidecar (root) may read the store's files: directories 0700, files 0600.
        string store = Path.Combine(Agent.Directory, "state", "default", "api", "+eventual", "statestore");
        string slot = Assert.Single(Directory.GetDirectories(store, "slot-*"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(slot));
        string[] files = Directory.GetFiles(slot).Where(static f => Path.GetFileName(f).StartsWith("log-", StringComparison.Ordinal) || Path.GetFileName(f).StartsWith("snapshot-", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(files);
        Assert.All(files, static f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));

        var second = await BeemeshRun.RunAsync(
            [.. Agent.Workload("api"), "--state", "statestore=eventual"],
            $$$"""
            echo "cart=$(curl -s -w ' %{http_code}' {{{Api}}}/cart)"
            echo "etag=$({{{Etag}}})"
            echo "gone=$(curl -s -o /dev/null -w '%{http_code}' {{{Api}}}/gone)"
            echo "session=$(curl -s -w ' %{http_code}' {{{Api}}}/session)"
            """,
            Timeout);
        output.WriteLine(second.ToString());
        Assert.Equal(0, second.ExitCode);
        lines = second.Stdout.Split('\n');
        Assert.Contains("cart={\"items\":2} 200", lines);
        Assert.Contains("etag=" + etag, lines);
        Assert.Contains("gone=204", lines);
        Assert.Contains("session=\"s\" 200", lines);
    }
}
