using System.Buffers.Binary;
using System.Net.Sockets;

namespace Beemesh.Identity.Attestation;

/// <summary>
/// The credentials the kernel recorded for the peer of a unix socket when it connected
/// (<c>SO_PEERCRED</c>, see unix(7)). The peer cannot forge them, which is what makes them usable
/// for attestation.
/// </summary>
/// <param name="ProcessId">The peer's pid, as seen from this process's pid namespace.</param>
/// <param name="UserId">The peer's effective uid.</param>
/// <param name="GroupId">The peer's effective gid.</param>
public readonly record struct PeerCredentials(int ProcessId, uint UserId, uint GroupId)
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    /// <summary>Reads <c>SO_PEERCRED</c> from a connected unix socket; null when the kernel refuses.</summary>
    public static PeerCredentials? FromSocket(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } — three 32-bit native-endian fields.
        Span<byte> ucred = stackalloc byte[12];
        try
        {
            int length = socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred);
            if (length < 12)
            {
                return null;
            }
        }
        catch (SocketException)
        {
            return null;
        }

        int pid = BitConverter.IsLittleEndian ? BinaryPrimitives.ReadInt32LittleEndian(ucred) : BinaryPrimitives.ReadInt32BigEndian(ucred);
        uint uid = BitConverter.IsLittleEndian ? BinaryPrimitives.ReadUInt32LittleEndian(ucred[4..]) : BinaryPrimitives.ReadUInt32BigEndian(ucred[4..]);
        uint gid = BitConverter.IsLittleEndian ? BinaryPrimitives.ReadUInt32LittleEndian(ucred[8..]) : BinaryPrimitives.ReadUInt32BigEndian(ucred[8..]);
        return pid <= 0 ? null : new PeerCredentials(pid, uid, gid);
    }
}
