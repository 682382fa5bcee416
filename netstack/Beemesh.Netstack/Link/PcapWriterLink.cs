using System.Buffers.Binary;

namespace Beemesh.Netstack.Link;

/// <summary>
/// Decorator that records every frame read from or written to the inner link in a pcap file
/// (the classic libpcap format, microsecond timestamps, LINKTYPE_ETHERNET), so a run can be
/// inspected with <c>tcpdump -r</c> or Wireshark. The virtio_net_hdr, when the inner link has
/// one, is not Ethernet and is left out of the capture. Each record is flushed as it is written,
/// so a capture survives a crash. Written frames are recorded before the inner link sees them,
/// including ones it then drops.
/// </summary>
/// <remarks>Owns the output stream and the inner link: disposing closes both.</remarks>
public sealed class PcapWriterLink : ILinkDevice
{
    /// <summary>LINKTYPE_ETHERNET in the pcap global header.</summary>
    public const uint LinkTypeEthernet = 1;

    private const uint Magic = 0xA1B2C3D4; // microsecond resolution, written in our byte order
    private const int GlobalHeaderLength = 24;
    private const int RecordHeaderLength = 16;

    private readonly ILinkDevice _inner;
    private readonly Stream _output;
    private readonly TimeProvider _time;
    private readonly int _snapLength;
    private readonly int _skip;
    private readonly Lock _gate = new();
    private bool _disposed;

    /// <summary>Wraps <paramref name="inner"/>, writing the capture to <paramref name="output"/> (which the link now owns).</summary>
    /// <param name="inner">The link whose traffic is recorded.</param>
    /// <param name="output">Where the pcap bytes go.</param>
    /// <param name="time">Clock for record timestamps; the system clock when null.</param>
    /// <param name="snapLength">Longest frame part recorded; longer frames are cut (their original length is kept). Default 262144, tcpdump's.</param>
    public PcapWriterLink(ILinkDevice inner, Stream output, TimeProvider? time = null, int snapLength = 262144)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(snapLength, 64);
        _inner = inner;
        _output = output;
        _time = time ?? TimeProvider.System;
        _snapLength = snapLength;
        _skip = inner.VnetHeader ? 10 : 0;
        Span<byte> header = stackalloc byte[GlobalHeaderLength];
        BinaryPrimitives.WriteUInt32LittleEndian(header, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], 2); // version 2.4
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], 4);
        BinaryPrimitives.WriteInt32LittleEndian(header[8..], 0); // thiszone: timestamps are UTC
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], 0); // sigfigs
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], (uint)snapLength);
        BinaryPrimitives.WriteUInt32LittleEndian(header[20..], LinkTypeEthernet);
        _output.Write(header);
        _output.Flush();
    }

    /// <summary>Wraps <paramref name="inner"/>, creating (or truncating) the capture file at <paramref name="path"/>.</summary>
    public PcapWriterLink(ILinkDevice inner, string path, TimeProvider? time = null)
        : this(inner, new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read), time)
    {
    }

    /// <summary>Frames written to the capture so far (both directions).</summary>
    public long FramesRecorded { get; private set; }

    /// <inheritdoc />
    public int Fd => _inner.Fd;

    /// <inheritdoc />
    public bool VnetHeader => _inner.VnetHeader;

    /// <inheritdoc />
    public bool Offload => _inner.Offload;

    /// <inheritdoc />
    public int Read(Span<byte> buffer)
    {
        int n = _inner.Read(buffer);
        if (n > 0)
        {
            Record(buffer[..n]);
        }

        return n;
    }

    /// <inheritdoc />
    public bool Write(ReadOnlySpan<byte> frame)
    {
        Record(frame);
        return _inner.Write(frame);
    }

    private void Record(ReadOnlySpan<byte> frame)
    {
        // A frame shorter than its vnet header is not Ethernet at all; record what follows it (nothing).
        var ethernet = frame.Length > _skip ? frame[_skip..] : ReadOnlySpan<byte>.Empty;
        int captured = Math.Min(ethernet.Length, _snapLength);
        long micros = (_time.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;
        Span<byte> header = stackalloc byte[RecordHeaderLength];
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)(micros / 1_000_000));
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], (uint)(micros % 1_000_000));
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], (uint)captured);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], (uint)ethernet.Length);
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _output.Write(header);
            _output.Write(ethernet[..captured]);
            _output.Flush();
            FramesRecorded++;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _output.Dispose();
        }

        _inner.Dispose();
    }
}
