using System.Runtime.InteropServices;

namespace Beemesh.Interop;

/// <summary>
/// The Linux structs and calls for passing file descriptors over unix sockets (SCM_RIGHTS, see
/// unix(7) and cmsg(3)), in one place for the two assemblies that pass descriptors: the stack (the
/// tap fd from the namespace helper) and the agent's client (tunnel connections from the agent).
/// Neither may reference the other, so this file is compiled into both.
/// </summary>
/// <remarks>
/// The structs follow the Linux LP64 layouts shared by x86_64 and arm64 (glibc and musl):
/// <c>msghdr</c> is 56 bytes, <c>cmsghdr</c> is { size_t len; int level; int type; } = 16 bytes and the
/// payload starts at <c>CMSG_ALIGN(sizeof(cmsghdr))</c>. Using <see cref="nuint"/> for every size_t
/// field keeps the same code right on 32-bit Linux, where both alignments are 4.
/// </remarks>
internal static unsafe partial class UnixRights
{
    private const string LibC = "libc";

    /// <summary>SOL_SOCKET on x86_64 and arm64.</summary>
    public const int SolSocket = 1;

    /// <summary>SCM_RIGHTS.</summary>
    public const int ScmRights = 1;

    /// <summary>MSG_CMSG_CLOEXEC: a received descriptor is never inherited by a child.</summary>
    public const int MsgCmsgCloexec = 0x40000000;

    /// <summary>MSG_CTRUNC: the kernel dropped control data (and closed those descriptors).</summary>
    public const int MsgCtrunc = 0x8;

    /// <summary>EINTR.</summary>
    public const int Eintr = 4;

    /// <summary>EAGAIN.</summary>
    public const int Eagain = 11;

    /// <summary>POLLIN.</summary>
    public const short PollIn = 0x1;

    /// <summary>CMSG_ALIGN: rounds up to the size of a machine word.</summary>
    public static nuint Align(nuint length) => (length + (nuint)sizeof(nuint) - 1) & ~(nuint)(sizeof(nuint) - 1);

    /// <summary>
    /// Walks the message's control data (CMSG_FIRSTHDR / CMSG_NXTHDR): keeps the first descriptor
    /// of SCM_RIGHTS in <paramref name="fd"/> when it is still -1, and closes every other one.
    /// </summary>
    public static void TakeDescriptors(MessageHeader* message, ref int fd)
    {
        byte* start = (byte*)message->Control;
        byte* end = start + message->ControlLength;
        nuint headerSize = Align((nuint)sizeof(ControlMessageHeader));
        byte* current = start;
        while (current + sizeof(ControlMessageHeader) <= end)
        {
            var header = (ControlMessageHeader*)current;
            if (header->Length < (nuint)sizeof(ControlMessageHeader) || current + header->Length > end)
            {
                break;
            }

            if (header->Level == SolSocket && header->Type == ScmRights)
            {
                int count = (int)((header->Length - headerSize) / sizeof(int));
                int* fds = (int*)(current + headerSize);
                for (int i = 0; i < count; i++)
                {
                    if (fd < 0)
                    {
                        fd = fds[i];
                    }
                    else
                    {
                        _ = close(fds[i]);
                    }
                }
            }

            current += Align(header->Length);
        }
    }

    /// <summary><c>struct iovec</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct IoVector
    {
        public byte* Base;
        public nuint Length;
    }

    /// <summary><c>struct msghdr</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MessageHeader
    {
        public void* Name;
        public uint NameLength;
        public IoVector* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary><c>struct cmsghdr</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ControlMessageHeader
    {
        public nuint Length;
        public int Level;
        public int Type;
    }

    /// <summary><c>struct pollfd</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PollEntry
    {
        public int Fd;
        public short Events;
        public short ReturnedEvents;
    }

    [LibraryImport(LibC, SetLastError = true)]
    public static partial nint sendmsg(int socket, MessageHeader* message, int flags);

    [LibraryImport(LibC, SetLastError = true)]
    public static partial nint recvmsg(int socket, MessageHeader* message, int flags);

    [LibraryImport(LibC, SetLastError = true)]
    public static partial int poll(PollEntry* entries, nuint count, int timeoutMilliseconds);

    [LibraryImport(LibC, SetLastError = true)]
    public static partial int close(int fd);
}
