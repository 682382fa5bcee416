using System.Runtime.InteropServices;
using Beemesh.Netstack.Interop;

namespace Beemesh.Netstack.Link;

/// <summary>
/// Owns the file descriptor of a tap device opened by <see cref="TapOpener"/> or <see cref="TapRunner"/>.
/// Disposing it closes the fd, which removes the (non-persistent) tap device from its namespace.
/// </summary>
/// <remarks>
/// The fd is close-on-exec and <b>non-blocking</b> (O_NONBLOCK is set when the handle is created): the
/// link loop waits for readiness with epoll and drains the device until read(2) reports EAGAIN.
/// With <see cref="VnetHeader"/> every frame read or written starts with a 10-byte
/// <c>struct virtio_net_hdr</c> (the kernel's default TUNSETVNETHDRSZ).
/// </remarks>
public sealed class TapHandle : SafeHandle
{
    /// <summary>Size of the virtio-net header that precedes each frame when <see cref="VnetHeader"/> is set.</summary>
    public const int VirtioNetHeaderLength = 10;

    /// <summary>Takes ownership of <paramref name="fd"/> and makes it non-blocking.</summary>
    /// <exception cref="IOException">O_NONBLOCK could not be set; the fd is closed.</exception>
    internal TapHandle(int fd, string name, bool vnetHeader, bool offload)
        : base(invalidHandleValue: -1, ownsHandle: true)
    {
        SetHandle(fd);
        Name = name;
        VnetHeader = vnetHeader;
        Offload = offload;
        try
        {
            FdPassing.SetNonBlocking(fd);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Interface name inside the target namespace (for example <c>tap0</c>).</summary>
    public string Name { get; }

    /// <summary>True when the device was opened with IFF_VNET_HDR: frames carry a virtio-net header.</summary>
    public bool VnetHeader { get; }

    /// <summary>True when the kernel accepted TUNSETOFFLOAD (checksum, TSO4, TSO6); false also without a vnet header.</summary>
    public bool Offload { get; }

    /// <summary>Bytes of virtio-net header before each frame: 10 with <see cref="VnetHeader"/>, else 0.</summary>
    public int HeaderLength => VnetHeader ? VirtioNetHeaderLength : 0;

    /// <summary>The raw fd, for epoll registration. Valid only while the handle is not disposed.</summary>
    public int FileDescriptor => (int)handle;

    /// <inheritdoc/>
    public override bool IsInvalid => handle == -1;

    /// <inheritdoc/>
    protected override bool ReleaseHandle() => FdPassing.Close((int)handle);
}
