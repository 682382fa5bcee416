using System.Diagnostics;
using Beemesh.Agent.Tests;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Mesh;

/// <summary>
/// A workload started with <c>beemesh run --name</c> tries the agent's admin API: to register
/// itself under another identity, to read the policies and to apply one. It gets nothing (403, or
/// no socket to reach at all), and the agent's state is unchanged.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class WorkloadAdminAccessTests(ITestOutputHelper output) : MeshAgentTest
{
    private const string Attempts = AdminRequestScript.Function + """
        import os, sys
        path = sys.argv[1]
        def req(method, url, body):
            try:
                return admin_request(path, method, url, body)[0]
            except OSError as e:
                return "ERR"
        me = os.getpid()
        register = req("POST", "/v1/workloads", '{"name":"api","namespace":"prod","pid":%d,"tunnelEndpoint":"127.0.0.1:1"}' % me)
        listed = req("GET", "/v1/policies", "")
        applied = req("POST", "/v1/policies", "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: open, namespace: prod}\nspec: {action: ALLOW, rules: [{}]}\n")
        print("attempts %s %s %s" % (register, listed, applied), flush=True)
        """;

    [SkippableFact]
    public async Task Workload_cannot_register_read_or_change_anything_through_the_admin_api()
    {
        BeemeshEnvironment.RequireReady();
        Skip.If(Agent is null, "the agent could not be started");
        Skip.IfNot(File.Exists("/usr/bin/python3"), "python3 is not installed (/usr/bin/python3)");
        string script = Path.Combine(Path.GetTempPath(), $"beemesh-admin-attempts-{Guid.NewGuid():N}.py");
        await File.WriteAllTextAsync(script, Attempts);
        try
        {
            string admin = Path.Combine(Agent!.Directory, "admin.sock");
            var run = await BeemeshRun.RunAsync(Agent.Workload("evil"), $"/usr/bin/python3 {script} {admin}", TimeSpan.FromSeconds(60));
            output.WriteLine(run.Stdout);
            output.WriteLine(run.Stderr);
            string line = run.Stdout.Split('\n').Single(l => l.StartsWith("attempts ", StringComparison.Ordinal));
            foreach (string status in line.Split(' ').Skip(1))
            {
                Assert.True(status is "403" or "ERR", $"the workload got {status} from the admin API: {line}");
            }

            // The agent's state is unchanged: no policy, no prod/api workload.
            var psi = new ProcessStartInfo(BeemeshEnvironment.BeemeshPath) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string a in new[] { "status", "--agent", Agent.Directory })
            {
                psi.ArgumentList.Add(a);
            }

            using Process status2 = Process.Start(psi)!;
            string statusText = await status2.StandardOutput.ReadToEndAsync();
            await status2.WaitForExitAsync();
            output.WriteLine(statusText);
            Assert.DoesNotContain("ns/prod/sa/api", statusText, StringComparison.Ordinal);
            Assert.Contains("policies      0 (version 0)", statusText, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(script);
        }
    }
}
