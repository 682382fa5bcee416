using System.Globalization;

namespace Beemesh.Netstack.Link;

/// <summary>
/// Opens a tap device inside another process's network namespace through the <c>beemesh-nsenter</c>
/// helper and returns its fd. A .NET process cannot join a user namespace itself (setns(2) refuses
/// multithreaded callers), so the single-threaded helper does it and passes the fd back over a unix
/// socket (SCM_RIGHTS).
/// </summary>
public static class TapOpener
{
    /// <summary>
    /// Runs <c>beemesh-nsenter tap</c> for <paramref name="request"/> and returns the tap it created.
    /// </summary>
    /// <param name="request">Target namespace, tap name and configuration.</param>
    /// <param name="timeout">Longest wait for the helper to send the fd and exit; it is killed after that.</param>
    /// <returns>The tap, non-blocking and close-on-exec; the caller disposes it.</returns>
    /// <exception cref="ArgumentException">Not exactly one of <see cref="TapOpenRequest.Pid"/> and <see cref="TapOpenRequest.NetnsPath"/>.</exception>
    /// <exception cref="TapOpenException">The helper was not found, failed (its reason is in the message) or timed out.</exception>
    public static TapHandle Open(TapOpenRequest request, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Pid.HasValue == (request.NetnsPath is not null))
        {
            throw new ArgumentException("Set exactly one of Pid and NetnsPath.", nameof(request));
        }

        var arguments = new List<string>();
        if (request.Pid is int pid)
        {
            arguments.Add("--pid");
            arguments.Add(pid.ToString(CultureInfo.InvariantCulture));
        }
        else
        {
            arguments.Add("--netns");
            arguments.Add(request.NetnsPath!);
        }
        if (request.UsernsPath is not null)
        {
            arguments.Add("--userns");
            arguments.Add(request.UsernsPath);
        }
        if (request.Configure)
        {
            arguments.Add("--configure");
        }
        NsenterSession.AddTapArguments(
            arguments, request.TapName, request.VnetHeader, request.Configure, request.Mtu, request.Address, request.Gateway, request.Mac, request.Ipv6);

        long deadline = NsenterSession.DeadlineAfter(timeout);
        using var session = NsenterSession.Start(request.NsenterPath, "tap", arguments, captureStandardError: true, redirectStandardOutput: false);
        using var process = session.Process;
        var (tap, control) = session.ReceiveTap(request.TapName, deadline);
        control.Dispose();
        // The helper exits right after sending; a non-zero status after "ok" still means failure.
        if (!process.WaitForExit(Math.Max(NsenterSession.RemainingMilliseconds(deadline), 1000)))
        {
            tap.Dispose();
            throw session.TimedOut();
        }
        if (process.ExitCode != 0)
        {
            tap.Dispose();
            throw session.Failed(null, deadline);
        }
        return tap;
    }
}
