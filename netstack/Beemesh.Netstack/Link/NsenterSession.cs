using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Beemesh.Netstack.Interop;

namespace Beemesh.Netstack.Link;

/// <summary>
/// One run of the <c>beemesh-nsenter</c> helper: a private listening socket, the helper process, and
/// receiving the tap fd with its status line. Shared by <see cref="TapOpener"/> and <see cref="TapRunner"/>.
/// </summary>
/// <remarks>
/// Ownership: the session owns the listener and its temporary directory (removed as soon as the
/// helper has connected, or on <see cref="Dispose"/>). It never disposes <see cref="Process"/>;
/// the caller does.
/// </remarks>
internal sealed class NsenterSession : IDisposable
{
    /// <summary>File name of the helper, looked up next to the executable and then on PATH.</summary>
    public const string HelperName = "beemesh-nsenter";

    /// <summary>How often the accept wait checks whether the helper died before connecting.</summary>
    private static readonly TimeSpan ExitCheckInterval = TimeSpan.FromMilliseconds(50);

    private readonly DirectoryInfo directory;
    private readonly Socket listener;
    private readonly Task<string>? standardError;
    private bool listenerClosed;

    private NsenterSession(DirectoryInfo directory, Socket listener, Process process, Task<string>? standardError)
    {
        this.directory = directory;
        this.listener = listener;
        Process = process;
        this.standardError = standardError;
    }

    /// <summary>The running helper.</summary>
    public Process Process { get; }

    /// <summary>
    /// Listens on a fresh socket in a private (0700) temporary directory and starts the helper as
    /// <c>beemesh-nsenter COMMAND --socket PATH ARGUMENTS...</c>.
    /// </summary>
    public static NsenterSession Start(
        string? helperPath, string command, IReadOnlyList<string> arguments, bool captureStandardError, bool redirectStandardOutput,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        string helper = LocateHelper(helperPath);
        // CreateTempSubdirectory uses mkdtemp: mode 0700, so no other user can reach the socket.
        DirectoryInfo directory = Directory.CreateTempSubdirectory("beemesh-");
        Socket? listener = null;
        try
        {
            string socketPath = Path.Combine(directory.FullName, "nsenter.sock");
            listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(socketPath));
            listener.Listen(1);

            var start = new ProcessStartInfo(helper)
            {
                UseShellExecute = false,
                RedirectStandardError = captureStandardError,
                RedirectStandardOutput = redirectStandardOutput,
            };
            start.ArgumentList.Add(command);
            start.ArgumentList.Add("--socket");
            start.ArgumentList.Add(socketPath);
            foreach (string argument in arguments)
            {
                start.ArgumentList.Add(argument);
            }
            if (environment is not null)
            {
                foreach (var (key, value) in environment)
                {
                    start.Environment[key] = value;
                }
            }

            Process process;
            try
            {
                process = Process.Start(start) ?? throw new TapOpenException($"cannot start {helper}");
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw new TapOpenException($"cannot start {helper}: {e.Message}", inner: e);
            }
            Task<string>? standardError = captureStandardError ? process.StandardError.ReadToEndAsync() : null;
            return new NsenterSession(directory, listener, process, standardError);
        }
        catch
        {
            listener?.Dispose();
            DeleteDirectory(directory);
            throw;
        }
    }

    /// <summary>
    /// Waits for the helper to connect and send its one message; returns the tap and the connected
    /// control socket. On any failure the helper is reaped (or killed on timeout) and a
    /// <see cref="TapOpenException"/> carries its reason.
    /// </summary>
    public (TapHandle Tap, Socket Control) ReceiveTap(string tapName, long deadline)
    {
        Socket control = Accept(deadline);
        int fd = -1;
        try
        {
            string line = ReceiveLine(control, deadline, out fd);
            if (fd >= 0 && TryParseOk(line, out bool vnet, out bool offload))
            {
                int owned = fd;
                fd = -1; // the handle owns it now, even if making it non-blocking fails
                return (new TapHandle(owned, tapName, vnet, offload), control);
            }
            string? reason = line.StartsWith("error ", StringComparison.Ordinal) ? line["error ".Length..] : null;
            throw Failed(reason ?? (line.Length > 0 ? $"unexpected reply '{line}'" : null), deadline);
        }
        catch
        {
            if (fd >= 0)
            {
                FdPassing.Close(fd);
            }
            control.Dispose();
            throw;
        }
    }

    // One message from the helper: a text line and, with it, at most one fd (-1 when none came).
    private string ReceiveLine(Socket control, long deadline, out int fd)
    {
        Span<byte> buffer = stackalloc byte[600];
        int length;
        try
        {
            fd = FdPassing.ReceiveFd(control.SafeHandle, buffer, out length, RemainingMilliseconds(deadline));
        }
        catch (TimeoutException)
        {
            throw TimedOut();
        }
        catch (IOException e)
        {
            throw new TapOpenException($"{HelperName}: {e.Message}", inner: e);
        }

        return Encoding.UTF8.GetString(buffer[..length]).TrimEnd('\n');
    }

    /// <summary>
    /// Receives the listening socket the helper made for <paramref name="port"/> (<c>run --listen</c>)
    /// on <paramref name="control"/>, after the tap; returns its fd, which the caller owns.
    /// </summary>
    public int ReceiveListener(Socket control, int port, long deadline)
    {
        string line = ReceiveLine(control, deadline, out int fd);
        if (fd >= 0 && line == $"listen {port.ToString(CultureInfo.InvariantCulture)}")
        {
            return fd;
        }

        if (fd >= 0)
        {
            FdPassing.Close(fd);
        }

        string? reason = line.StartsWith("error ", StringComparison.Ordinal) ? line["error ".Length..] : null;
        throw Failed(reason ?? (line.Length > 0 ? $"unexpected reply '{line}'" : null), deadline);
    }

    /// <summary>Builds the exception for a helper that failed, waiting (bounded) for its exit and stderr.</summary>
    public TapOpenException Failed(string? reason, long deadline)
    {
        int? exitCode = null;
        if (Process.WaitForExit(Math.Max(RemainingMilliseconds(deadline), 1000)))
        {
            exitCode = Process.ExitCode;
        }
        else
        {
            Kill();
        }
        reason ??= LastErrorLine();
        string status = exitCode is int code ? $"exit {code.ToString(CultureInfo.InvariantCulture)}" : "killed";
        string message = reason is null ? $"{HelperName} failed ({status})" : $"{HelperName} failed ({status}): {reason}";
        return new TapOpenException(message, reason, exitCode);
    }

    /// <summary>Kills the helper and builds the timeout exception.</summary>
    public TapOpenException TimedOut()
    {
        Kill();
        string? reason = LastErrorLine();
        return new TapOpenException(
            reason is null ? $"{HelperName} timed out" : $"{HelperName} timed out: {reason}", reason, exitCode: null);
    }

    /// <summary>Milliseconds left until <paramref name="deadline"/> (a Stopwatch timestamp), at least 0.</summary>
    public static int RemainingMilliseconds(long deadline)
    {
        long ticks = deadline - Stopwatch.GetTimestamp();
        return ticks <= 0 ? 0 : (int)Math.Min(int.MaxValue, ticks * 1000 / Stopwatch.Frequency);
    }

    /// <summary>A Stopwatch timestamp <paramref name="timeout"/> from now.</summary>
    public static long DeadlineAfter(TimeSpan timeout) =>
        Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);

    /// <summary>Closes the listener and removes the temporary directory.</summary>
    public void Dispose() => CloseListener();

    private Socket Accept(long deadline)
    {
        while (true)
        {
            int slice = Math.Min(RemainingMilliseconds(deadline), (int)ExitCheckInterval.TotalMilliseconds);
            if (listener.Poll(slice * 1000, SelectMode.SelectRead))
            {
                break;
            }
            if (Process.HasExited)
            {
                // The helper connects before it does anything else, so a connection it made is
                // already queued by the time it has exited.
                if (listener.Poll(0, SelectMode.SelectRead))
                {
                    break;
                }
                throw Failed(null, deadline);
            }
            if (RemainingMilliseconds(deadline) == 0)
            {
                throw TimedOut();
            }
        }
        Socket control = listener.Accept();
        CloseListener(); // the connection outlives the socket file; nothing else may connect
        return control;
    }

    private static bool TryParseOk(string line, out bool vnet, out bool offload)
    {
        vnet = false;
        offload = false;
        string[] words = line.Split(' ');
        if (words.Length == 0 || words[0] != "ok")
        {
            return false;
        }
        foreach (string word in words.AsSpan(1))
        {
            if (word == "vnet=1")
            {
                vnet = true;
            }
            else if (word == "offload=1")
            {
                offload = true;
            }
        }
        return true;
    }

    private string? LastErrorLine()
    {
        if (standardError is null || !standardError.Wait(TimeSpan.FromSeconds(1)))
        {
            return null;
        }
        string prefix = HelperName + ": ";
        string? last = null;
        foreach (string line in standardError.Result.Split('\n'))
        {
            if (line.Trim().Length > 0)
            {
                last = line.Trim();
            }
        }
        return last is not null && last.StartsWith(prefix, StringComparison.Ordinal) ? last[prefix.Length..] : last;
    }

    private void Kill()
    {
        try
        {
            Process.Kill();
            Process.WaitForExit(1000);
        }
        catch (InvalidOperationException)
        {
            // already exited
        }
    }

    private void CloseListener()
    {
        if (listenerClosed)
        {
            return;
        }
        listenerClosed = true;
        listener.Dispose();
        DeleteDirectory(directory);
    }

    private static void DeleteDirectory(DirectoryInfo directory)
    {
        try
        {
            directory.Delete(recursive: true);
        }
        catch (IOException)
        {
            // best effort: a leftover empty 0700 directory in the temp dir is harmless
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    internal static string LocateHelper(string? helperPath)
    {
        if (helperPath is not null)
        {
            return helperPath;
        }
        string beside = Path.Combine(AppContext.BaseDirectory, HelperName);
        if (File.Exists(beside))
        {
            return beside;
        }
        foreach (string directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(directory, HelperName);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new TapOpenException($"{HelperName} was not found next to {AppContext.BaseDirectory} or on PATH");
    }

    /// <summary>Appends the tap and configuration options shared by both commands.</summary>
    public static void AddTapArguments(
        List<string> arguments, string tapName, bool vnetHeader, bool configure, int mtu, string address, string gateway, string? mac, bool ipv6)
    {
        arguments.Add("--tap");
        arguments.Add(tapName);
        if (vnetHeader)
        {
            arguments.Add("--vnet-hdr");
        }
        if (!configure)
        {
            return;
        }
        arguments.Add("--mtu");
        arguments.Add(mtu.ToString(CultureInfo.InvariantCulture));
        arguments.Add("--address");
        arguments.Add(address);
        arguments.Add("--gateway");
        arguments.Add(gateway);
        if (mac is not null)
        {
            arguments.Add("--mac");
            arguments.Add(mac);
        }
        if (ipv6)
        {
            arguments.Add("--ipv6");
        }
    }
}
