using System.Diagnostics;
using System.Net.Sockets;

namespace Beemesh.Netstack.Link;

/// <summary>
/// Runs a command in fresh user, mount, PID and network namespaces whose tap this process serves
/// (<c>beemesh-nsenter run</c>). <see cref="Start"/> returns once the configured tap is ours; the
/// command starts only when <see cref="Release"/> says the stack is running.
/// </summary>
/// <remarks>
/// <para>The command lives exactly as long as the control socket: the helper stays outside the
/// command's PID namespace as a monitor and kills every process in it when the socket closes,
/// which the kernel does for us if this process dies, even by SIGKILL. Signals sent to
/// <see cref="Process"/> (TERM, HUP, INT, QUIT, USR1, USR2) reach the command, and its exit status
/// is the helper's (128 + signal when it was killed).</para>
/// <para>Ownership: the runner owns <see cref="Tap"/>, <see cref="Process"/> and the control socket.
/// <see cref="Dispose"/> closes them, which ends the command if it is still running.</para>
/// </remarks>
public sealed class TapRunner : IDisposable
{
    private readonly Dictionary<int, int> listeners;
    private Socket? control;
    private bool released;
    private bool disposed;

    private TapRunner(TapHandle tap, Process process, Socket control, Dictionary<int, int> listeners)
    {
        Tap = tap;
        Process = process;
        this.control = control;
        this.listeners = listeners;
    }

    /// <summary>The configured tap inside the command's namespace; non-blocking.</summary>
    public TapHandle Tap { get; }

    /// <summary>The helper process: the monitor of the command's PID namespace, whose exit status is the command's.</summary>
    public Process Process { get; }

    /// <summary>
    /// Starts the helper and waits until it has created and configured the tap and sent its fd.
    /// </summary>
    /// <param name="request">Tap configuration and the command to run.</param>
    /// <param name="timeout">Longest wait for the fd; the helper is killed after that.</param>
    /// <exception cref="ArgumentException">The command is empty.</exception>
    /// <exception cref="TapOpenException">The helper was not found, failed (its reason is in the message) or timed out.</exception>
    public static TapRunner Start(TapRunRequest request, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Command.Count == 0)
        {
            throw new ArgumentException("The command is empty.", nameof(request));
        }
        var arguments = new List<string>();
        NsenterSession.AddTapArguments(
            arguments, request.TapName, request.VnetHeader, configure: true, request.Mtu, request.Address, request.Gateway, request.Mac, request.Ipv6);
        if (request.ResolvConf is not null)
        {
            arguments.Add("--resolv-conf");
            arguments.Add(request.ResolvConf);
        }
        if (request.HideDirectoryWith is not null && request.HideDirectory is null)
        {
            throw new ArgumentException("HideDirectoryWith needs HideDirectory.", nameof(request));
        }
        if (request.HideDirectory is not null)
        {
            arguments.Add("--hide");
            arguments.Add(Path.GetFullPath(request.HideDirectory));
            if (request.HideDirectoryWith is not null)
            {
                arguments.Add("--hide-with");
                arguments.Add(Path.GetFullPath(request.HideDirectoryWith));
            }
        }

        if (request.ListenPorts.Count > 4)
        {
            throw new ArgumentException("At most 4 listen ports.", nameof(request));
        }
        foreach (int port in request.ListenPorts)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
            arguments.Add("--listen");
            arguments.Add(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        arguments.Add("--");
        arguments.AddRange(request.Command);

        long deadline = NsenterSession.DeadlineAfter(timeout);
        // stderr stays inherited: after execvp it is the command's own stderr. The helper's
        // reason for a failure also arrives on the socket as "error ...".
        using var session = NsenterSession.Start(
            request.NsenterPath, "run", arguments, captureStandardError: false, request.RedirectStandardOutput, request.Environment);
        var listeners = new Dictionary<int, int>();
        TapHandle? tap = null;
        Socket? control = null;
        try
        {
            (tap, control) = session.ReceiveTap(request.TapName, deadline);
            foreach (int port in request.ListenPorts)
            {
                listeners[port] = session.ReceiveListener(control, port, deadline);
            }
            return new TapRunner(tap, session.Process, control, listeners);
        }
        catch
        {
            foreach (int fd in listeners.Values)
            {
                Interop.FdPassing.Close(fd);
            }
            control?.Dispose();
            tap?.Dispose();
            session.Process.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Hands over the socket listening on 127.0.0.1:<paramref name="port"/> inside the command's
    /// namespace (<see cref="TapRunRequest.ListenPorts"/>): the caller owns the returned fd from
    /// now on. Sockets never taken are closed by <see cref="Dispose"/>.
    /// </summary>
    /// <exception cref="KeyNotFoundException">The port was not requested, or was already taken.</exception>
    public int TakeListener(int port)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (!listeners.Remove(port, out int fd))
        {
            throw new KeyNotFoundException($"no listening socket for port {port}");
        }
        return fd;
    }

    /// <summary>
    /// Tells the helper the stack is running: it then starts the command. The control socket stays
    /// open until <see cref="Dispose"/>: closing it ends the command.
    /// </summary>
    /// <exception cref="InvalidOperationException">Already released.</exception>
    /// <exception cref="IOException">The helper is gone.</exception>
    public void Release()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (released)
        {
            throw new InvalidOperationException("The command was already released.");
        }
        released = true;
        Socket socket = control!;
        try
        {
            socket.Send([1]);
        }
        catch (SocketException e)
        {
            control = null;
            socket.Dispose();
            throw new IOException($"cannot release the command: {e.Message}", e);
        }
    }

    /// <summary>Waits for the command (or the helper, if it failed) to exit and returns its exit status.</summary>
    public async Task<int> WaitForExitAsync(CancellationToken cancellationToken = default)
    {
        await Process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        return Process.ExitCode;
    }

    /// <summary>Closes the tap and the control socket (which ends the command) and reaps the helper.</summary>
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }
        disposed = true;
        control?.Dispose();
        control = null;
        foreach (int fd in listeners.Values)
        {
            Interop.FdPassing.Close(fd);
        }
        listeners.Clear();
        Tap.Dispose();
        try
        {
            // The closed socket makes the helper kill the command's PID namespace and exit; the
            // kill is the fallback for a helper that does not.
            if (!Process.WaitForExit(TimeSpan.FromSeconds(2)))
            {
                Process.Kill(entireProcessTree: true);
                Process.WaitForExit();
            }
        }
        catch (InvalidOperationException)
        {
            // exited in between
        }
        Process.Dispose();
    }
}
