using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Beemesh.EndToEnd.Tests.Slirp;

/// <summary>
/// One guest network namespace (an unprivileged user namespace made by
/// <c>unshare --user --map-root-user --net</c>) with a slirp implementation serving its tap0,
/// started as podman starts it: <c>-c -r 3 -a SOCKET PID tap0</c>, fd 3 a pipe on which the
/// implementation writes "1" when ready. Dispose kills every process the sandbox started.
/// </summary>
public sealed partial class SlirpSandbox : IAsyncDisposable
{
    /// <summary>Time allowed for the implementation to write "1" on the ready fd.</summary>
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(20);

    private readonly ITestOutputHelper _output;
    private readonly SlirpSandboxOptions _options;
    private readonly List<Process> _guestProcesses = [];
    private Process? _namespace;
    private Process? _implementation;
    private StringBuilder? _implementationStdout;
    private StringBuilder? _implementationStderr;
    private FileStream? _readyPipe;
    private FileStream? _exitPipe;

    private SlirpSandbox(string implementation, string binary, SlirpSandboxOptions options, ITestOutputHelper output)
    {
        Implementation = implementation;
        Binary = binary;
        _options = options;
        _output = output;
        Directory = System.IO.Directory.CreateTempSubdirectory("bmslirp-").FullName;
        ApiSocketPath = Path.Combine(Directory, "api.sock");
    }

    /// <summary>"slirp4netns" or "beemesh".</summary>
    public string Implementation { get; }

    /// <summary>The executable under test.</summary>
    public string Binary { get; }

    /// <summary>A private temporary directory, deleted on dispose; the guest shares the host's file system.</summary>
    public string Directory { get; }

    /// <summary>The API socket given with <c>-a</c>.</summary>
    public string ApiSocketPath { get; }

    /// <summary>PID of the sleeping process whose namespaces are the guest's.</summary>
    public int GuestPid { get; private set; }

    /// <summary>PID of the implementation process.</summary>
    public int ImplementationPid => _implementation?.Id ?? 0;

    /// <summary>Time from process start until "1" arrived on the ready fd.</summary>
    public TimeSpan StartupTime { get; private set; }

    /// <summary>Whether the implementation process has exited.</summary>
    public bool ImplementationExited => _implementation?.HasExited ?? true;

    /// <summary>Creates the namespace, starts the implementation and waits for it to be ready.</summary>
    /// <param name="implementation"><see cref="SlirpImplementation.Reference"/> or <see cref="SlirpImplementation.Beemesh"/>.</param>
    /// <param name="output">Receives the implementation's output when the sandbox is disposed.</param>
    /// <param name="options">How to start it; null for the defaults.</param>
    /// <returns>A ready sandbox.</returns>
    public static async Task<SlirpSandbox> StartAsync(string implementation, ITestOutputHelper output, SlirpSandboxOptions? options = null)
    {
        string binary = SlirpImplementation.Require(implementation);
        var sandbox = new SlirpSandbox(implementation, binary, options ?? new SlirpSandboxOptions(), output);
        try
        {
            await sandbox.StartCoreAsync();
            return sandbox;
        }
        catch
        {
            await sandbox.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs a bash script inside the guest's user and network namespaces.</summary>
    /// <param name="script">The script (host file system, guest network).</param>
    /// <param name="timeoutSeconds">Time limit; the script is killed after it.</param>
    /// <returns>Exit code and output.</returns>
    public Task<CommandResult> GuestAsync(string script, double timeoutSeconds = 15) =>
        HostCommand.RunAsync(TimeSpan.FromSeconds(timeoutSeconds), "nsenter", GuestArguments(["bash", "-c", script]));

    /// <summary>Starts a program inside the guest in the background; dispose kills it.</summary>
    /// <param name="arguments">The program and its arguments, without a shell.</param>
    public void StartInGuest(params string[] arguments)
    {
        Process p = HostCommand.Start("nsenter", GuestArguments(arguments), out _, out _);
        lock (_guestProcesses)
        {
            _guestProcesses.Add(p);
        }
    }

    /// <summary>Waits until something in the guest listens on a port.</summary>
    /// <param name="port">The port.</param>
    /// <param name="udp">True for a UDP socket, false for a TCP listener.</param>
    public async Task WaitForGuestListenerAsync(int port, bool udp = false)
    {
        string kind = udp ? "-Hlun" : "-Hltn";
        CommandResult r = await GuestAsync(
            $"for i in $(seq 200); do ss {kind} 'sport = :{port}' | grep -q . && exit 0; sleep 0.05; done; exit 1");
        Assert.True(r.ExitCode == 0, $"no guest listener on port {port}: {r}");
    }

    /// <summary>Sends one request on the API socket (one request per connection) and returns the reply.</summary>
    /// <param name="request">The request text, sent as is.</param>
    /// <returns>The reply text.</returns>
    public async Task<string> ApiAsync(string request)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(ApiSocketPath), limit.Token);
        await socket.SendAsync(Encoding.UTF8.GetBytes(request), SocketFlags.None, limit.Token);
        socket.Shutdown(SocketShutdown.Send);
        var reply = new MemoryStream();
        var buffer = new byte[4096];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, limit.Token)) > 0)
        {
            reply.Write(buffer, 0, n);
        }

        return Encoding.UTF8.GetString(reply.ToArray());
    }

    /// <summary>Closes the write end of the exit-fd pipe (the sandbox's only writer).</summary>
    public void CloseExitFd()
    {
        Assert.NotNull(_exitPipe);
        _exitPipe.Dispose();
        _exitPipe = null;
    }

    /// <summary>Waits for the implementation to exit.</summary>
    /// <param name="timeout">How long to wait.</param>
    /// <returns>True when it exited in time.</returns>
    public async Task<bool> WaitForImplementationExitAsync(TimeSpan timeout)
    {
        using var limit = new CancellationTokenSource(timeout);
        try
        {
            await _implementation!.WaitForExitAsync(limit.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Resident set size of the implementation process, from /proc/PID/status, in KiB.</summary>
    /// <returns>VmRSS in KiB.</returns>
    public long ResidentKilobytes()
    {
        foreach (string line in File.ReadLines($"/proc/{ImplementationPid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        throw new XunitException($"no VmRSS for pid {ImplementationPid}");
    }

    /// <summary>Kills the implementation, the guest's processes and the namespace; logs the implementation's output.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_implementation is not null)
        {
            HostCommand.Kill(_implementation);
            _implementation.WaitForExit();
            Log($"[{Implementation}] stdout:\n{Snapshot(_implementationStdout)}[{Implementation}] stderr:\n{Snapshot(_implementationStderr)}");
            _implementation.Dispose();
        }

        lock (_guestProcesses)
        {
            foreach (Process p in _guestProcesses)
            {
                HostCommand.Kill(p);
                p.Dispose();
            }

            _guestProcesses.Clear();
        }

        if (_namespace is not null)
        {
            HostCommand.Kill(_namespace);
            _namespace.Dispose();
        }

        _readyPipe?.Dispose();
        _exitPipe?.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A straggler may still hold a file; the directory is in /tmp anyway.
        }

        await Task.CompletedTask;
    }

    private async Task StartCoreAsync()
    {
        _namespace = HostCommand.Start("unshare", ["--user", "--map-root-user", "--net", "--fork", "sleep", "600"], out _, out _);
        GuestPid = await WaitForChildAsync(_namespace.Id);

        string readyPath = MakeFifo("ready");
        // O_RDWR on a FIFO never blocks (Linux fifo(7)), so neither side waits for the other to open,
        // and holding the only writer of the exit pipe means closing it is what the implementation sees.
        _readyPipe = new FileStream(readyPath, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 0);
        var command = new StringBuilder("exec ").Append(Quote(Binary)).Append(" -c -r 3 -a ").Append(Quote(ApiSocketPath));
        foreach (string a in _options.ExtraArguments)
        {
            command.Append(' ').Append(Quote(a));
        }

        if (_options.WithExitFd)
        {
            string exitPath = MakeFifo("exit");
            _exitPipe = new FileStream(exitPath, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 0);
            command.Append(" -e 4");
            command.Append(' ').Append(GuestPid).Append(" tap0 3>").Append(Quote(readyPath)).Append(" 4<").Append(Quote(exitPath));
        }
        else
        {
            command.Append(' ').Append(GuestPid).Append(" tap0 3>").Append(Quote(readyPath));
        }

        string file = "bash";
        List<string> arguments = ["-c", command.ToString()];
        if (_options.ResolvConf is { } resolvConf)
        {
            string resolvPath = Path.Combine(Directory, "resolv.conf");
            await File.WriteAllTextAsync(resolvPath, resolvConf);
            file = "unshare";
            arguments = ["-m", "bash", "-c", $"mount --bind {Quote(resolvPath)} /etc/resolv.conf && {command}"];
        }

        if (_options.HostNetworkNamespace is { } hostNetns)
        {
            arguments = [$"--net={hostNetns}", "--", file, .. arguments];
            file = "nsenter";
        }

        var clock = Stopwatch.StartNew();
        _implementation = HostCommand.Start(file, arguments, out _implementationStdout, out _implementationStderr);
        await WaitForReadyAsync(clock);
    }

    private async Task WaitForReadyAsync(Stopwatch clock)
    {
        var buffer = new byte[1];
        FileStream ready = _readyPipe!;
        Task<int> read = Task.Run(() => ready.Read(buffer, 0, 1));
        Task exited = _implementation!.WaitForExitAsync();
        Task first = await Task.WhenAny(read, exited, Task.Delay(ReadyTimeout));
        if (first == read && await read == 1)
        {
            StartupTime = clock.Elapsed;
            Assert.True(buffer[0] == (byte)'1', $"ready fd carried 0x{buffer[0]:x2}, not \"1\"");
            return;
        }

        // Unblock the reader thread through a second writer before giving up.
        using (var unblock = new FileStream(Path.Combine(Directory, "ready"), FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 0))
        {
            unblock.WriteByte((byte)'x');
        }

        await read;
        string why = first == exited ? $"exited with {_implementation.ExitCode}" : $"not ready after {ReadyTimeout.TotalSeconds} s";
        throw new XunitException(
            $"{Implementation} {why}; stderr: {Snapshot(_implementationStderr)} stdout: {Snapshot(_implementationStdout)}");
    }

    private static async Task<int> WaitForChildAsync(int pid)
    {
        string children = $"/proc/{pid}/task/{pid}/children";
        for (int i = 0; i < 500; i++)
        {
            string text = File.Exists(children) ? (await File.ReadAllTextAsync(children)).Trim() : "";
            if (text.Length > 0)
            {
                return int.Parse(text.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            }

            await Task.Delay(10);
        }

        throw new XunitException("unshare made no child within 5 s");
    }

    private string MakeFifo(string name)
    {
        string path = Path.Combine(Directory, name);
        if (MakeFifo(path, 0x180) != 0)
        {
            throw new XunitException($"mkfifo {path}: errno {Marshal.GetLastPInvokeError()}");
        }

        return path;
    }

    private string[] GuestArguments(IEnumerable<string> command) =>
        ["-t", GuestPid.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", "-n", "--preserve-credentials", .. command];

    private void Log(string text)
    {
        try
        {
            _output.WriteLine(text);
        }
        catch (InvalidOperationException)
        {
            // The test already finished; its output is closed.
        }
    }

    private static string Snapshot(StringBuilder? sb)
    {
        if (sb is null)
        {
            return "";
        }

        lock (sb)
        {
            return sb.ToString();
        }
    }

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    [LibraryImport("libc", EntryPoint = "mkfifo", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int MakeFifo(string path, uint mode);
}
