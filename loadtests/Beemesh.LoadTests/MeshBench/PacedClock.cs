using System.Runtime.InteropServices;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>
/// The calling thread's view of CLOCK_MONOTONIC, with a sleep until an absolute instant
/// (<c>clock_nanosleep(TIMER_ABSTIME)</c>) and the thread's timer slack cut to 1 ns, so a paced
/// sender wakes when it is due and not up to 50 µs or a timer tick later.
/// </summary>
internal static partial class PacedClock
{
    private const int ClockMonotonic = 1;
    private const int TimerAbsTime = 1;
    private const int PrSetTimerSlack = 29;
    private const int Eintr = 4;

    /// <summary>Nanoseconds on CLOCK_MONOTONIC.</summary>
    public static long NowNs()
    {
        if (ClockGetTime(ClockMonotonic, out Timespec now) != 0)
        {
            throw new InvalidOperationException($"clock_gettime failed: errno {Marshal.GetLastPInvokeError()}");
        }

        return (now.Seconds * 1_000_000_000L) + now.Nanoseconds;
    }

    /// <summary>Sleeps until CLOCK_MONOTONIC reads <paramref name="dueNs"/>; returns at once if it already has.</summary>
    public static void SleepUntil(long dueNs)
    {
        var due = new Timespec { Seconds = dueNs / 1_000_000_000L, Nanoseconds = dueNs % 1_000_000_000L };
        int result;
        do
        {
            result = ClockNanosleep(ClockMonotonic, TimerAbsTime, in due, IntPtr.Zero);
        }
        while (result == Eintr);
    }

    /// <summary>Sets the calling thread's timer slack to 1 ns (Linux' default is 50 µs); false if refused.</summary>
    public static bool TightenTimerSlack() => Prctl(PrSetTimerSlack, 1, 0, 0, 0) == 0;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime", SetLastError = true)]
    private static partial int ClockGetTime(int clockId, out Timespec time);

    // clock_nanosleep returns the error number instead of setting errno.
    [LibraryImport("libc", EntryPoint = "clock_nanosleep")]
    private static partial int ClockNanosleep(int clockId, int flags, in Timespec request, IntPtr remain);

    [LibraryImport("libc", EntryPoint = "prctl")]
    private static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);
}
