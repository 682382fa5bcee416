using System.Diagnostics;

namespace Beemesh.Agent.Tests;

/// <summary>
/// A separate process (python3) standing in for a workload: it listens on a unix socket of its own
/// and relays each connection to the agent's Workload API, so the agent sees the relay's process as
/// the caller. In handoff mode a short-lived grandchild opens the Workload API connection, passes it
/// to the relay (SCM_RIGHTS) and exits, and is reaped, leaving a connection whose process is gone.
/// </summary>
internal sealed class WorkloadRelay : IDisposable
{
    private const string Script = """
        import os, socket, sys, threading, time
        listen_path, target, mode = sys.argv[1], sys.argv[2], sys.argv[3]
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(listen_path)
        srv.listen(64)
        def pump(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
            finally:
                try:
                    b.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        kept = None
        if mode == "handoff":
            a, b = socket.socketpair()
            pid = os.fork()
            if pid == 0:
                u = socket.socket(socket.AF_UNIX)
                u.connect(target)
                time.sleep(2)  # the agent normally accepts while this process still runs
                socket.send_fds(b, [b"x"], [u.fileno()])
                os._exit(0)
            _, fds, _, _ = socket.recv_fds(a, 1, 1)
            os.waitpid(pid, 0)
            kept = socket.socket(fileno=fds[0])
            print("gone %d" % pid, flush=True)
        else:
            print("ready %d" % os.getpid(), flush=True)
        while True:
            c, _ = srv.accept()
            if kept is not None:
                u, kept = kept, None
            else:
                u = socket.socket(socket.AF_UNIX)
                u.connect(target)
            threading.Thread(target=pump, args=(c, u), daemon=True).start()
            threading.Thread(target=pump, args=(u, c), daemon=True).start()
        """;

    private readonly Process _process;

    private WorkloadRelay(Process process, string socketPath, int reportedPid)
    {
        _process = process;
        SocketPath = socketPath;
        ReportedPid = reportedPid;
    }

    /// <summary>The relay's own listening socket; connect a Workload API client here.</summary>
    public string SocketPath { get; }

    /// <summary>The relay's pid (plain mode) or the pid of the gone grandchild (handoff mode).</summary>
    public int ReportedPid { get; }

    /// <summary>The relay process's pid.</summary>
    public int ProcessId => _process.Id;

    public static bool Available => File.Exists("/usr/bin/python3");

    public static Task<WorkloadRelay> StartAsync(string target, string socketPath) => StartAsync(target, socketPath, "plain");

    public static Task<WorkloadRelay> StartHandoffAsync(string target, string socketPath) => StartAsync(target, socketPath, "handoff");

    private static async Task<WorkloadRelay> StartAsync(string target, string socketPath, string mode)
    {
        var info = new ProcessStartInfo("/usr/bin/python3") { UseShellExecute = false, RedirectStandardOutput = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(Script);
        info.ArgumentList.Add(socketPath);
        info.ArgumentList.Add(target);
        info.ArgumentList.Add(mode);
        Process process = Process.Start(info)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        string line = await process.StandardOutput.ReadLineAsync(timeout.Token) ?? throw new InvalidOperationException("relay exited before it was ready");
        return new WorkloadRelay(process, socketPath, int.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    public void Dispose()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }
}
