using System.Diagnostics;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Mesh;

/// <summary>
/// What a workload started by <c>beemesh run --name</c> can and cannot reach: the agent's state
/// directory is hidden (only the Workload API relay's <c>agent.sock</c> shows there), a
/// SPIFFE-aware client that is not ours fetches the workload's own SVID through
/// <c>SPIFFE_ENDPOINT_SOCKET</c>, and the workload lives and dies with <c>beemesh run</c>.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class WorkloadIsolationTests(ITestOutputHelper output) : MeshAgentTest
{
    private const string SystemPython = "/usr/bin/python3";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [SkippableFact]
    public async Task The_workload_sees_only_agent_sock_in_the_state_dir_and_cannot_uncover_it()
    {
        BeemeshEnvironment.RequireReady("curl");
        Skip.If(Agent is null, "the agent could not be started");
        string dir = Agent!.Directory;
        Assert.True(File.Exists(Path.Combine(dir, "ca.key")), "the agent keeps its CA key in its state directory");
        Assert.True(File.Exists(Path.Combine(dir, "admin.sock")));

        var run = await BeemeshRun.RunAsync(Agent.Workload("intruder"), $$"""
            echo "ls=[$(ls -A {{dir}} | tr '\n' ' ')]"
            cat {{dir}}/ca.key; echo "cat=$?"
            head -c 64 {{dir}}/ca.key >/dev/null 2>&1; echo "head=$?"
            test -e {{dir}}/admin.sock; echo "admin-exists=$?"
            curl -sS --max-time 5 --unix-socket {{dir}}/admin.sock -H 'content-type: application/json' \
              -d '{"name":"api","namespace":"prod","pid":'$$',"ports":[]}' http://agent/v1/workloads; echo "curl=$?"
            umount {{dir}} 2>/dev/null; echo "umount=$?"
            umount -l {{dir}} 2>/dev/null; echo "umount-lazy=$?"
            mount -o remount,rw {{dir}} 2>/dev/null; echo "remount=$?"
            echo "after=[$(ls -A {{dir}} | tr '\n' ' ')]"
            echo "endpoint=$SPIFFE_ENDPOINT_SOCKET"
            """, Timeout);
        output.WriteLine(run.ToString());

        Assert.Equal(0, run.ExitCode);
        string[] lines = run.Stdout.Split('\n');
        Assert.Contains("ls=[agent.sock ]", lines);
        Assert.Contains("cat=1", lines);
        Assert.Contains("head=1", lines);
        Assert.Contains("admin-exists=1", lines);
        Assert.Contains(lines, l => l.StartsWith("curl=", StringComparison.Ordinal) && l != "curl=0");
        Assert.DoesNotContain("BEGIN", run.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("prod", run.Stdout, StringComparison.Ordinal);
        Assert.Contains(lines, l => l.StartsWith("umount=", StringComparison.Ordinal) && l != "umount=0");
        Assert.Contains(lines, l => l.StartsWith("umount-lazy=", StringComparison.Ordinal) && l != "umount-lazy=0");
        Assert.Contains(lines, l => l.StartsWith("remount=", StringComparison.Ordinal) && l != "remount=0");
        Assert.Contains("after=[agent.sock ]", lines);
        Assert.Contains($"endpoint=unix://{dir}/agent.sock", lines);
    }

    [SkippableFact]
    public async Task Started_from_inside_the_state_dir_the_workload_cannot_reach_it_through_its_working_directory()
    {
        BeemeshEnvironment.RequireReady();
        Skip.If(Agent is null, "the agent could not be started");
        string dir = Agent!.Directory;
        Assert.True(File.Exists(Path.Combine(dir, "ca.key")));

        // The caller's working directory is the state directory, then a directory inside it.
        foreach (string start in new[] { dir, Path.Combine(dir, "state") })
        {
            Assert.True(Directory.Exists(start), $"{start} exists on the host");
            var run = await BeemeshRun.RunAsync(Agent.Workload("from-inside"), """
                echo "pwd=$(pwd)"
                echo "here=[$(ls -A . | tr '\n' ' ')]"
                cat ./ca.key ../ca.key; echo "cat=$?"
                test -e ./admin.sock || test -e ../admin.sock; echo "admin-exists=$?"
                """, Timeout, workingDirectory: start);
            output.WriteLine(run.ToString());

            Assert.Equal(0, run.ExitCode);
            string[] lines = run.Stdout.Split('\n');
            Assert.DoesNotContain("BEGIN", run.Stdout, StringComparison.Ordinal);
            Assert.Contains(lines, l => l.StartsWith("cat=", StringComparison.Ordinal) && l != "cat=0");
            Assert.Contains("admin-exists=1", lines);
            Assert.DoesNotContain(lines, l => l.StartsWith("here=", StringComparison.Ordinal) && (l.Contains("ca.key", StringComparison.Ordinal) || l.Contains("workloads.json", StringComparison.Ordinal)));
        }
    }

    [SkippableFact]
    public async Task The_workload_cannot_change_kernel_settings_or_cgroups_of_the_node()
    {
        BeemeshEnvironment.RequireReady();
        Skip.If(Agent is null, "the agent could not be started");
        Skip.IfNot(File.Exists("/proc/sys/kernel/core_pattern"), "no /proc/sys/kernel/core_pattern on this kernel");

        // Opening for writing is enough to tell (nothing is written): the workload's root is the
        // caller's uid, and the kernel lets that uid write /proc/sys and sysfs from any user namespace.
        var run = await BeemeshRun.RunAsync(Agent!.Workload("sysctl"), """
            true >> /proc/sys/kernel/core_pattern; echo "core-pattern=$?"
            true >> /proc/sys/vm/drop_caches; echo "drop-caches=$?"
            echo "sys-options=$(awk '$5 == "/sys" { print $6 }' /proc/self/mountinfo)"
            echo "cgroup-options=[$(awk '$5 ~ "^/sys/fs/cgroup" { print $6 }' /proc/self/mountinfo | sort -u | tr '\n' ' ')]"
            mount -o remount,rw /proc/sys 2>/dev/null; echo "remount-proc-sys=$?"
            mount -o remount,rw /sys 2>/dev/null; echo "remount-sys=$?"
            umount -l /proc/sys 2>/dev/null; echo "umount-proc-sys=$?"
            mount -t proc proc /mnt 2>/dev/null; echo "new-proc=$?"
            """, Timeout);
        output.WriteLine(run.ToString());

        Assert.Equal(0, run.ExitCode);
        string[] lines = run.Stdout.Split('\n');
        foreach (string probe in new[] { "core-pattern", "drop-caches", "remount-proc-sys", "remount-sys", "umount-proc-sys", "new-proc" })
        {
            Assert.Contains(lines, l => l.StartsWith(probe + "=", StringComparison.Ordinal));
            Assert.DoesNotContain(probe + "=0", lines);
        }

        string sys = Assert.Single(lines, l => l.StartsWith("sys-options=", StringComparison.Ordinal));
        Assert.StartsWith("sys-options=ro", sys, StringComparison.Ordinal);
        string cgroups = Assert.Single(lines, l => l.StartsWith("cgroup-options=", StringComparison.Ordinal));
        Assert.DoesNotContain("rw", cgroups, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task The_workloads_resolv_conf_comes_from_a_private_directory_not_a_predictable_temp_name()
    {
        BeemeshEnvironment.RequireReady();
        Skip.If(Agent is null, "the agent could not be started");
        string temp = Path.TrimEndingDirectorySeparator(Path.GetTempPath());
        Skip.IfNot(temp == "/tmp", $"the temp directory is {temp}, not /tmp");

        // The bind mount's source as mountinfo shows it (relative to its file system's root, which
        // is "/" when /tmp is not a mount of its own).
        var run = await BeemeshRun.RunAsync(Agent!.Workload("resolver"), """
            src=$(awk '$5 == "/etc/resolv.conf" { print $4 }' /proc/self/mountinfo | sed 's|//deleted$||')
            echo "src=$src"
            echo "parent=$(dirname "$src")"
            awk '$5 == "/tmp" { print "tmp-is-a-mount" }' /proc/self/mountinfo
            """, Timeout);
        output.WriteLine(run.ToString());

        Assert.Equal(0, run.ExitCode);
        string[] lines = run.Stdout.Split('\n');
        Skip.If(lines.Contains("tmp-is-a-mount"), "/tmp is a file system of its own: mountinfo does not show the full path");
        string parent = Assert.Single(lines, l => l.StartsWith("parent=", StringComparison.Ordinal))["parent=".Length..];
        // Not a name in the shared /tmp another user could have planted as a symlink: a directory
        // of its own under it (mkdtemp).
        Assert.NotEqual("/tmp", parent);
        Assert.StartsWith("/tmp/beemesh-resolv-", parent, StringComparison.Ordinal);
        Assert.Contains("src=" + parent + "/resolv.conf", lines);
    }

    [SkippableFact]
    public async Task Without_a_name_the_state_dir_is_an_empty_directory()
    {
        BeemeshEnvironment.RequireReady();
        Skip.If(Agent is null, "the agent could not be started");
        string dir = Agent!.Directory;

        var run = await BeemeshRun.RunAsync(["--agent", dir], $"""
            echo "ls=[$(ls -A {dir})]"
            cat {dir}/ca.key; echo "cat=$?"
            echo "endpoint=[$SPIFFE_ENDPOINT_SOCKET]"
            """, Timeout);
        output.WriteLine(run.ToString());

        Assert.Equal(0, run.ExitCode);
        string[] lines = run.Stdout.Split('\n');
        Assert.Contains("ls=[]", lines);
        Assert.Contains("cat=1", lines);
        Assert.Contains("endpoint=[]", lines);
        Assert.True(File.Exists(Path.Combine(dir, "ca.key")));
    }

    [SkippableFact]
    public async Task A_grpc_client_that_is_not_ours_fetches_the_workloads_own_svid_and_openssl_verifies_it()
    {
        BeemeshEnvironment.RequireReady("openssl");
        Skip.If(Agent is null, "the agent could not be started");
        Skip.IfNot(File.Exists(SystemPython), $"{SystemPython} is missing (scripts/test installs python3)");
        string? generated = await GenerateStubsAsync();
        Skip.If(generated is null, "python3-grpcio and python3-grpc-tools are not installed (scripts/test installs them)");
        try
        {
            string script = Path.Combine(generated!, "fetch_svid.py");
            await File.WriteAllTextAsync(script, FetchSvidScript);
            string pem = Path.Combine(generated!, "pem");
            var run = await BeemeshRun.RunAsync(Agent!.Workload("spiffe-app"), $"""
                {SystemPython} {script} {generated} {pem} || exit 3
                if [ -s {pem}/intermediates.pem ]; then untrusted="-untrusted {pem}/intermediates.pem"; fi
                openssl verify -CAfile {pem}/bundle.pem $untrusted {pem}/leaf.pem
                """, Timeout);
            output.WriteLine(run.ToString());

            Assert.Equal(0, run.ExitCode);
            Assert.Contains("spiffe_id=spiffe://example.org/ns/default/sa/spiffe-app\n", run.Stdout, StringComparison.Ordinal);
            Assert.Contains($"{pem}/leaf.pem: OK", run.Stdout, StringComparison.Ordinal);
            // The SVID names the workload in its URI SAN, as the chain verified above vouches for.
            var leaf = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(Path.Combine(pem, "leaf.pem")));
            Assert.Contains("spiffe://example.org/ns/default/sa/spiffe-app", leaf.Extensions["2.5.29.17"]!.Format(false), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(generated!, recursive: true);
        }
    }

    [SkippableFact]
    public async Task Kill_9_of_beemesh_run_leaves_no_process_of_the_workload()
    {
        BeemeshEnvironment.RequireReady();
        Skip.If(Agent is null, "the agent could not be started");
        string marker = "beemesh-victim-" + Guid.NewGuid().ToString("N");
        // A daemon-like child that ignores TERM and HUP, and its parent shell.
        await using var victim = BeemeshRun.Start(Agent!.Workload("victim"),
            $": {marker}; (trap '' TERM HUP; while :; do sleep 1; done) & echo ready; wait");
        Assert.True(await victim.WaitForLineAsync("ready", TimeSpan.FromSeconds(30)), victim.Stderr);
        Assert.NotEmpty(ProcessesWithMarker(marker));

        Process.GetProcessById(victim.ProcessId).Kill(); // SIGKILL to beemesh run alone

        var clock = Stopwatch.StartNew();
        while (ProcessesWithMarker(marker).Count > 0 && clock.Elapsed < TimeSpan.FromSeconds(5))
        {
            await Task.Delay(50);
        }

        output.WriteLine($"workload gone after {clock.ElapsedMilliseconds} ms");
        Assert.Empty(ProcessesWithMarker(marker));
    }

    [SkippableFact]
    public async Task Kill_9_of_beemesh_run_makes_the_agent_forget_the_workload_and_its_name_stop_resolving()
    {
        BeemeshEnvironment.RequireReady("curl", "getent");
        Skip.If(Agent is null, "the agent could not be started");
        await using var victim = BeemeshRun.Start(Agent!.Workload("vanishing"), "echo ready; exec sleep 300");
        Assert.True(await victim.WaitForLineAsync("ready", TimeSpan.FromSeconds(30)), victim.Stderr);
        Assert.Equal(200, await ResolveStatusAsync("vanishing.default"));

        Process.GetProcessById(victim.ProcessId).Kill();

        // Asked again at each change of the agent's workload list.
        var clock = Stopwatch.StartNew();
        int status = 0;
        using (HttpClient admin = AgentAdmin.Client(Agent.Directory))
        {
            await AgentAdmin.UntilAsync(p => AgentAdmin.WorkloadsChangedAsync(admin, p), async () => (status = await ResolveStatusAsync("vanishing.default")) != 200, TimeSpan.FromSeconds(5));
        }

        output.WriteLine($"resolve status {status} after {clock.ElapsedMilliseconds} ms");
        Assert.Equal(404, status);
        var prober = await BeemeshRun.RunAsync(Agent.Workload("prober"), "getent hosts vanishing.default; echo getent=$?", Timeout);
        output.WriteLine(prober.ToString());
        Assert.Contains("getent=2", prober.Stdout, StringComparison.Ordinal);
    }

    /// <summary>The HTTP status of the agent's <c>/v1/resolve</c> for <paramref name="name"/>, asked as the node's owner.</summary>
    private async Task<int> ResolveStatusAsync(string name)
    {
        var psi = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "--unix-socket", Path.Combine(Agent!.Directory, "admin.sock"), $"http://agent/v1/resolve?name={name}" })
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        string code = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        return int.TryParse(code, out int status) ? status : -1;
    }

    [SkippableFact]
    public async Task Signals_to_beemesh_run_reach_the_command_and_its_status_is_passed_through()
    {
        BeemeshEnvironment.RequireReady();
        Skip.If(Agent is null, "the agent could not be started");
        // A signal ignored where the tests run (SIGHUP under nohup) is ignored by the beemesh run they
        // start too: inherited, as nohup means it to be, so there is nothing to forward.
        bool hupIgnored = SignalIgnoredHere(1);
        if (hupIgnored)
        {
            output.WriteLine("SIGHUP case not run: this test process ignores SIGHUP (started under nohup?), and beemesh run inherits that");
        }

        foreach (var (signal, name, status) in new[] { (15, "TERM", 41), (1, "HUP", 42), (10, "USR1", 43), (12, "USR2", 44) })
        {
            if (signal == 1 && hupIgnored)
            {
                continue;
            }

            await using var run = BeemeshRun.Start(Agent!.Workload("signals"),
                $"trap 'echo got-{name}; exit {status}' {name}; echo ready; while :; do sleep 0.1; done");
            Assert.True(await run.WaitForLineAsync("ready", TimeSpan.FromSeconds(30)), run.Stderr);

            Assert.Equal(0, Kill(run.ProcessId, signal));
            var result = await run.WaitAsync(TimeSpan.FromSeconds(20));
            output.WriteLine(result.ToString());

            Assert.Contains($"got-{name}", result.Stdout, StringComparison.Ordinal);
            Assert.Equal(status, result.ExitCode);
        }

        // Without a trap the command dies of the signal: 128 + SIGTERM, as a shell reports it.
        await using var plain = BeemeshRun.Start([], "echo ready; exec sleep 300");
        Assert.True(await plain.WaitForLineAsync("ready", TimeSpan.FromSeconds(30)), plain.Stderr);
        Assert.Equal(0, Kill(plain.ProcessId, 15));
        Assert.Equal(128 + 15, (await plain.WaitAsync(TimeSpan.FromSeconds(20))).ExitCode);
    }

    /// <summary>Whether this process ignores <paramref name="signal"/> (its bit in SigIgn of /proc/self/status).</summary>
    private static bool SignalIgnoredHere(int signal)
    {
        string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return line is not null
            && ulong.TryParse(line["SigIgn:".Length..].Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out ulong mask)
            && (mask & (1UL << (signal - 1))) != 0;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    /// <summary>Pids whose command line contains <paramref name="marker"/>.</summary>
    private static List<int> ProcessesWithMarker(string marker)
    {
        var found = new List<int>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
            {
                continue;
            }

            try
            {
                if (File.ReadAllText(Path.Combine(dir, "cmdline")).Contains(marker, StringComparison.Ordinal))
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // exited while we looked
            }
        }

        return found;
    }

    /// <summary>
    /// Python stubs generated now from the repository's workload.proto (the SPIFFE standard's
    /// definition) with Debian's grpc_tools; null when the packages are missing.
    /// </summary>
    private async Task<string?> GenerateStubsAsync()
    {
        string proto = Path.Combine(RepositoryRoot(), "overlay", "Beemesh.Identity", "Protos");
        string directory = Directory.CreateTempSubdirectory("beemesh-spiffe-client-").FullName;
        var psi = new ProcessStartInfo(SystemPython) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("""
            import os, sys, grpc, grpc_tools
            from grpc_tools import protoc
            include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
            sys.exit(protoc.main(["protoc", "-I" + sys.argv[1], "-I" + include,
                                  "--python_out=" + sys.argv[2], "--grpc_python_out=" + sys.argv[2], "workload.proto"]))
            """);
        psi.ArgumentList.Add(proto);
        psi.ArgumentList.Add(directory);
        using var p = Process.Start(psi)!;
        string text = await p.StandardOutput.ReadToEndAsync() + await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        output.WriteLine($"stub generation: exit {p.ExitCode} {text}");
        if (p.ExitCode != 0)
        {
            Directory.Delete(directory, recursive: true);
            return null;
        }

        return directory;
    }

    private static string RepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Sidecar.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException("Sidecar.sln not found above the test binaries");
    }

    /// <summary>
    /// A plain grpcio client, as any SPIFFE library does it: dial SPIFFE_ENDPOINT_SOCKET, send the
    /// security header, take the first FetchX509SVID message, write the chain and bundle as PEM.
    /// </summary>
    private const string FetchSvidScript = """
        import base64, os, sys
        sys.path.insert(0, sys.argv[1])
        import grpc
        import workload_pb2, workload_pb2_grpc

        def split_der(blob):
            # Concatenated DER certificates: each is a SEQUENCE with a definite length.
            certs, i = [], 0
            while i < len(blob):
                if blob[i] != 0x30:
                    raise ValueError("not a DER SEQUENCE at %d" % i)
                first = blob[i + 1]
                if first < 0x80:
                    length, header = first, 2
                else:
                    n = first & 0x7F
                    length, header = int.from_bytes(blob[i + 2:i + 2 + n], "big"), 2 + n
                certs.append(blob[i:i + header + length])
                i += header + length
            return certs

        def pem(certs):
            out = ""
            for der in certs:
                b64 = base64.b64encode(der).decode()
                out += "-----BEGIN CERTIFICATE-----\n"
                out += "\n".join(b64[j:j + 64] for j in range(0, len(b64), 64))
                out += "\n-----END CERTIFICATE-----\n"
            return out

        endpoint = os.environ["SPIFFE_ENDPOINT_SOCKET"]
        print("endpoint=" + endpoint)
        with grpc.insecure_channel(endpoint) as channel:
            stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)
            stream = stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), metadata=[("workload.spiffe.io", "true")], timeout=30)
            response = next(stream)
            stream.cancel()
        svid = response.svids[0]
        print("spiffe_id=" + svid.spiffe_id)
        chain = split_der(svid.x509_svid)
        os.makedirs(sys.argv[2], exist_ok=True)
        with open(os.path.join(sys.argv[2], "leaf.pem"), "w") as f:
            f.write(pem(chain[:1]))
        with open(os.path.join(sys.argv[2], "intermediates.pem"), "w") as f:
            f.write(pem(chain[1:]))
        with open(os.path.join(sys.argv[2], "bundle.pem"), "w") as f:
            f.write(pem(split_der(svid.bundle)))
        print("certificates=%d bundle=%d" % (len(chain), len(split_der(svid.bundle))))
        """;
}
