using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.State;

/// <summary>
/// Dapr's state API as a <c>beemesh run --name</c> workload sees it: inside its own network
/// namespace on 127.0.0.1:3500 and :50001, found through the DAPR_* variables, used by the official
/// .NET SDK (unmodified) and by plain curl.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class DaprStateTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);
    private MeshAgentProcess? _agent;

    public async Task InitializeAsync() => _agent = await MeshAgentProcess.StartAsync();

    public async Task DisposeAsync()
    {
        if (_agent is not null)
        {
            await _agent.DisposeAsync();
        }
    }

    /// <summary>The Dapr app built next to the tests (a project reference copies it here).</summary>
    private static string AppPath => Path.Combine(AppContext.BaseDirectory, "Beemesh.DaprStateApp.dll");

    [SkippableFact]
    public async Task The_official_dotnet_sdk_saves_gets_checks_etags_deletes_bulks_transacts_and_expires()
    {
        BeemeshEnvironment.RequireReady("dotnet");
        Skip.If(_agent is null, "the agent could not be started");
        Assert.True(File.Exists(AppPath), $"{AppPath} is missing");
        var run = await BeemeshRun.RunAsync(
            [.. _agent!.Workload("orders"), "--state", "statestore=eventual"],
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
        Skip.If(_agent is null, "the agent could not be started");
        var run = await BeemeshRun.RunAsync(
            _agent!.Workload("carts"),
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
    public async Task Strong_consistency_is_refused_with_one_clear_line()
    {
        BeemeshEnvironment.RequireReady();
        Skip.If(_agent is null, "the agent could not be started");
        var run = await BeemeshRun.RunAsync([.. _agent!.Workload("ledger"), "--state", "statestore=strong"], "echo started", Timeout);
        output.WriteLine(run.ToString());
        Assert.Equal(2, run.ExitCode);
        Assert.DoesNotContain("started", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("strong consistency (Raft) is not available yet", run.Stderr, StringComparison.Ordinal);
    }
}
