using System.Diagnostics;

namespace Beemesh.Agent.Tests;

/// <summary>
/// A separate process (python3) that sends one HTTP/1.1 request to the admin socket when told to
/// (a line on stdin), either itself or from a child it forks, and prints the status and body. It
/// stands in for a workload trying the admin API.
/// </summary>
internal sealed class AdminCaller : IDisposable
{
    private const string Script = AdminRequestScript.Function + """
        import os, sys
        path, method, url, body, fork = sys.argv[1:6]
        print("pid %d" % os.getpid(), flush=True)
        sys.stdin.readline()
        def request():
            status, rest = admin_request(path, method, url, body, "Content-Type: application/json\r\n")
            return status + " " + rest.strip().replace("\r", " ").replace("\n", " ")
        if fork == "1":
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.write(w, request().encode())
                os._exit(0)
            os.close(w)
            out = b""
            while True:
                d = os.read(r, 65536)
                if not d:
                    break
                out += d
            os.waitpid(pid, 0)
            print(out.decode(), flush=True)
        else:
            print(request(), flush=True)
        """;

    private readonly Process _process;

    private AdminCaller(Process process, int pid)
    {
        _process = process;
        ProcessId = pid;
    }

    public int ProcessId { get; }

    public static AdminCaller Start(string adminSocket, string method, string url, string body = "", bool fromChild = false)
    {
        var info = new ProcessStartInfo("/usr/bin/python3") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardInput = true };
        foreach (string argument in new[] { "-c", Script, adminSocket, method, url, body, fromChild ? "1" : "0" })
        {
            info.ArgumentList.Add(argument);
        }

        Process process = Process.Start(info)!;
        string line = process.StandardOutput.ReadLine() ?? throw new InvalidOperationException("caller exited early");
        return new AdminCaller(process, int.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Sends the request; returns "STATUS BODY".</summary>
    public async Task<string> SendAsync()
    {
        await _process.StandardInput.WriteLineAsync("go");
        await _process.StandardInput.FlushAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        return await _process.StandardOutput.ReadLineAsync(timeout.Token) ?? throw new InvalidOperationException("caller printed nothing");
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
