using System.Buffers;
using System.Text;

namespace Beemesh.Agent.Client;

/// <summary>
/// What a QUIC tunnel stream names first, before the bytes of the flow: which of the destination
/// node's workloads the stream is for. A caller's sidecar opens one bidirectional stream per tunnel
/// connection on its QUIC connection to the destination node, writes this header and then exactly
/// the bytes the TCP path carries (the end-to-end TLS with the destination workload's sidecar); the
/// node relays the rest of the stream to that sidecar without reading it, as its tunnel port does
/// with a TLS connection it routed by SNI.
/// </summary>
/// <remarks>
/// <para>Wire form (all lengths in bytes):</para>
/// <code>
///  0        1        2        3 ...
/// +--------+--------+--------+------------------------+
/// | version|  kind  | length | name (length bytes)    |
/// +--------+--------+--------+------------------------+
/// </code>
/// <para>
/// <c>version</c> is <see cref="Version"/>; <c>kind</c> is a <see cref="TunnelStreamTarget"/>
/// (append-only); <c>length</c> is 1 to <see cref="MaxNameLength"/>; the name is ASCII: lower-case
/// letters, digits, <c>-</c> and <c>.</c>, the form <see cref="TunnelServerName"/> produces. Anything
/// else is invalid: the node refuses the stream and counts it.
/// </para>
/// </remarks>
/// <param name="Target">What <paramref name="Name"/> names.</param>
/// <param name="Name">The destination, lower case.</param>
public readonly record struct TunnelStreamHeader(TunnelStreamTarget Target, string Name)
{
    /// <summary>The only version this code reads and writes.</summary>
    public const byte Version = 1;

    /// <summary>Longest name (a DNS name's limit).</summary>
    public const int MaxNameLength = 253;

    /// <summary>Bytes before the name.</summary>
    public const int FixedLength = 3;

    /// <summary>Longest header on the wire.</summary>
    public const int MaxLength = FixedLength + MaxNameLength;

    private static class Field
    {
        public const int Version = 0;
        public const int Target = 1;
        public const int Length = 2;
        public const int Name = 3;
    }

    /// <summary>A header for the workload whose tunnel server name is <paramref name="serverName"/>.</summary>
    public static TunnelStreamHeader ForServerName(string serverName) => new(TunnelStreamTarget.ServerName, serverName);

    /// <summary>Bytes <see cref="Emit"/> writes.</summary>
    public int BufferLength => FixedLength + Name.Length;

    /// <summary>
    /// Writes the header to the start of <paramref name="destination"/> and returns its length.
    /// Throws <see cref="ArgumentException"/> when the name is not a valid one (see the remarks) or the
    /// buffer is too small.
    /// </summary>
    public int Emit(Span<byte> destination)
    {
        if (CheckName(Name) is { } bad)
        {
            throw new ArgumentException($"invalid tunnel stream destination '{Name}': {bad}", nameof(Name));
        }

        if (!Enum.IsDefined(Target))
        {
            throw new ArgumentException($"unknown tunnel stream target kind {(byte)Target}", nameof(Target));
        }

        if (destination.Length < BufferLength)
        {
            throw new ArgumentException($"the buffer holds {destination.Length} bytes, the header needs {BufferLength}", nameof(destination));
        }

        destination[Field.Version] = Version;
        destination[Field.Target] = (byte)Target;
        destination[Field.Length] = (byte)Name.Length;
        Encoding.ASCII.GetBytes(Name, destination[Field.Name..]);
        return BufferLength;
    }

    /// <summary>The header's bytes (see <see cref="Emit"/>).</summary>
    public byte[] ToArray()
    {
        byte[] bytes = new byte[BufferLength];
        Emit(bytes);
        return bytes;
    }

    /// <summary>
    /// Reads a header from the first bytes of a stream, <paramref name="data"/> being what arrived so
    /// far: <see cref="OperationStatus.Done"/> with the header and its length in
    /// <paramref name="consumed"/> (the flow's bytes follow), <see cref="OperationStatus.NeedMoreData"/>
    /// when it is not complete yet (read more and call again), or
    /// <see cref="OperationStatus.InvalidData"/> with the reason in <paramref name="error"/>.
    /// </summary>
    public static OperationStatus TryParse(ReadOnlySpan<byte> data, out TunnelStreamHeader header, out int consumed, out string? error)
    {
        header = default;
        consumed = 0;
        error = null;
        if (data.Length > Field.Version && data[Field.Version] != Version)
        {
            error = $"version {data[Field.Version]} is not {Version}";
            return OperationStatus.InvalidData;
        }

        if (data.Length > Field.Target && !Enum.IsDefined((TunnelStreamTarget)data[Field.Target]))
        {
            error = $"unknown target kind {data[Field.Target]}";
            return OperationStatus.InvalidData;
        }

        if (data.Length > Field.Length && data[Field.Length] is 0 or > MaxNameLength)
        {
            error = $"name length {data[Field.Length]} is not 1-{MaxNameLength}";
            return OperationStatus.InvalidData;
        }

        if (data.Length < FixedLength || data.Length < FixedLength + data[Field.Length])
        {
            return OperationStatus.NeedMoreData;
        }

        int length = data[Field.Length];
        ReadOnlySpan<byte> name = data.Slice(Field.Name, length);
        foreach (byte b in name)
        {
            if (!IsNameByte(b))
            {
                error = $"byte 0x{b:x2} is not allowed in a name";
                return OperationStatus.InvalidData;
            }
        }

        header = new TunnelStreamHeader((TunnelStreamTarget)data[Field.Target], Encoding.ASCII.GetString(name));
        consumed = FixedLength + length;
        return OperationStatus.Done;
    }

    /// <summary>Why <paramref name="name"/> cannot be sent in a header, or null when it can.</summary>
    public static string? CheckName(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return "it is empty";
        }

        if (name.Length > MaxNameLength)
        {
            return $"it is longer than {MaxNameLength} characters";
        }

        foreach (char c in name)
        {
            if (c > 0x7f || !IsNameByte((byte)c))
            {
                return $"'{c}' is not a lower-case letter, digit, '-' or '.'";
            }
        }

        return null;
    }

    private static bool IsNameByte(byte b) => b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'0' and <= (byte)'9') or (byte)'-' or (byte)'.';
}

/// <summary>What the name of a <see cref="TunnelStreamHeader"/> names. Values are on the wire: append only.</summary>
public enum TunnelStreamTarget : byte
{
    /// <summary>A workload of the destination node, by its <see cref="TunnelServerName"/> (what SNI carries on the TCP path).</summary>
    ServerName = 1,
}
