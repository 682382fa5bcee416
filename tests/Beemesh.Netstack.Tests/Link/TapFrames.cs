using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Beemesh.Netstack.Link;

namespace Beemesh.Netstack.Tests.Link;

/// <summary>Raw read/write on a tap fd plus an ARP request builder, for the real-namespace tests.</summary>
internal static unsafe partial class TapFrames
{
    public const int Eagain = 11;

    public static readonly byte[] StackMac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

    /// <summary>An Ethernet ARP request "who has <paramref name="target"/>? tell <paramref name="sender"/>" (RFC 826).</summary>
    public static byte[] ArpRequest(byte[] sender, byte[] target)
    {
        var frame = new byte[42];
        frame.AsSpan(0, 6).Fill(0xff);              // broadcast destination
        StackMac.CopyTo(frame, 6);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x0806); // EtherType ARP
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(14), 1);      // hardware: Ethernet
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(16), 0x0800); // protocol: IPv4
        frame[18] = 6;
        frame[19] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(20), 1);      // request
        StackMac.CopyTo(frame, 22);
        sender.CopyTo(frame, 28);
        target.CopyTo(frame, 38);
        return frame;
    }

    /// <summary>read(2): byte count, or -errno.</summary>
    public static int Read(TapHandle tap, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            nint n = read(tap.FileDescriptor, p, (nuint)buffer.Length);
            return n >= 0 ? (int)n : -Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>write(2): byte count, or -errno.</summary>
    public static int Write(TapHandle tap, ReadOnlySpan<byte> frame)
    {
        fixed (byte* p = frame)
        {
            nint n = write(tap.FileDescriptor, p, (nuint)frame.Length);
            return n >= 0 ? (int)n : -Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>Waits (poll(2), bounded) until the tap has a frame to read.</summary>
    public static bool WaitReadable(TapHandle tap, int timeoutMilliseconds)
    {
        var entry = new PollEntry { Fd = tap.FileDescriptor, Events = 1 };
        return poll(&entry, 1, timeoutMilliseconds) > 0;
    }

    /// <summary>O_NONBLOCK is set on the fd.</summary>
    public static bool IsNonBlocking(TapHandle tap) => (fcntl(tap.FileDescriptor, 3, 0) & 0x800) != 0;

    [StructLayout(LayoutKind.Sequential)]
    private struct PollEntry
    {
        public int Fd;
        public short Events;
        public short ReturnedEvents;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll(PollEntry* entries, nuint count, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command, int argument);
}
