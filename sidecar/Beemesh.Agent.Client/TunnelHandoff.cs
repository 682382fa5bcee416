using System.ComponentModel;
using System.Runtime.InteropServices;
using static Beemesh.Interop.UnixRights;

namespace Beemesh.Agent.Client;

/// <summary>
/// Hands accepted tunnel connections from the node's tunnel port to the sidecar they are for, as
/// file descriptors (SCM_RIGHTS over a unix seqpacket socket, see unix(7)), so the agent is not in
/// their data path. A sidecar connects to <see cref="SocketName"/> in the agent directory and sends
/// its workload id; the agent answers <see cref="Accepted"/> when the connecting process is the one
/// that registered that workload (SO_PEERCRED), and from then on sends one message per connection:
/// <see cref="ConnectionMessage"/> with the connection's descriptor attached.
/// </summary>
public static unsafe class TunnelHandoff
{
    /// <summary>File name of the agent's handoff socket in its state directory.</summary>
    public const string SocketName = "tunnel-handoff.sock";

    /// <summary>The agent's answer to a channel it accepted.</summary>
    public const string Accepted = "ok";

    /// <summary>Payload of the message that carries one connection's descriptor.</summary>
    public const byte ConnectionMessage = (byte)'C';

    /// <summary>Longest message either side sends (a workload id, an answer with its reason).</summary>
    public const int MaxMessageBytes = 512;

    private const int MsgDontWait = 0x40;
    private const int MsgNoSignal = 0x4000;

    /// <summary>
    /// Sends <paramref name="descriptor"/> over <paramref name="channel"/> without blocking. Returns
    /// 0 on success, else the errno (EAGAIN when the receiver's queue is full); the descriptor stays
    /// open here either way.
    /// </summary>
    public static int Send(SafeHandle channel, SafeHandle descriptor)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentNullException.ThrowIfNull(descriptor);
        bool channelRef = false, descriptorRef = false;
        try
        {
            channel.DangerousAddRef(ref channelRef);
            descriptor.DangerousAddRef(ref descriptorRef);
            return Send((int)channel.DangerousGetHandle(), (int)descriptor.DangerousGetHandle());
        }
        finally
        {
            if (descriptorRef)
            {
                descriptor.DangerousRelease();
            }

            if (channelRef)
            {
                channel.DangerousRelease();
            }
        }
    }

    private static int Send(int channel, int descriptor)
    {
        byte payload = ConnectionMessage;
        nuint* control = stackalloc nuint[4];
        new Span<byte>(control, 4 * sizeof(nuint)).Clear();
        var header = (ControlMessageHeader*)control;
        nuint headerSize = Align((nuint)sizeof(ControlMessageHeader));
        header->Length = headerSize + sizeof(int);
        header->Level = SolSocket;
        header->Type = ScmRights;
        *(int*)((byte*)control + headerSize) = descriptor;
        var vector = new IoVector { Base = &payload, Length = 1 };
        var message = new MessageHeader
        {
            Iov = &vector,
            IovLength = 1,
            Control = control,
            ControlLength = Align(header->Length),
        };
        while (true)
        {
            if (sendmsg(channel, &message, MsgDontWait | MsgNoSignal) >= 0)
            {
                return 0;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno != Eintr)
            {
                return errno;
            }
        }
    }

    /// <summary>
    /// Waits for the next message on <paramref name="channel"/> (blocking) and returns the
    /// descriptor it carried (close-on-exec), -1 for a message without one, or null at the end of
    /// the channel. Descriptors beyond the first of a message are closed.
    /// </summary>
    /// <exception cref="IOException">recvmsg failed.</exception>
    public static int? Receive(SafeHandle channel)
    {
        ArgumentNullException.ThrowIfNull(channel);
        bool added = false;
        try
        {
            channel.DangerousAddRef(ref added);
            return Receive((int)channel.DangerousGetHandle());
        }
        finally
        {
            if (added)
            {
                channel.DangerousRelease();
            }
        }
    }

    private static int? Receive(int channel)
    {
        byte* data = stackalloc byte[16];
        nuint* control = stackalloc nuint[16];
        while (true)
        {
            var vector = new IoVector { Base = data, Length = 16 };
            var message = new MessageHeader
            {
                Iov = &vector,
                IovLength = 1,
                Control = control,
                ControlLength = (nuint)(16 * sizeof(nuint)),
            };
            nint result = recvmsg(channel, &message, MsgCmsgCloexec);
            if (result < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Eintr)
                {
                    continue;
                }

                if (errno == Eagain)
                {
                    // A non-blocking channel: wait until a message (or the end) is there.
                    var entry = new PollEntry { Fd = channel, Events = PollIn };
                    _ = poll(&entry, 1, -1);
                    continue;
                }

                throw new IOException($"recvmsg: {Marshal.GetPInvokeErrorMessage(errno)}", new Win32Exception(errno));
            }

            int fd = -1;
            TakeDescriptors(&message, ref fd);
            if (result == 0 && fd < 0)
            {
                return null;
            }

            return fd;
        }
    }
}
