using System.Net;
using System.Net.Sockets;

namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// A temporary directory on the host for scripts the guest runs: the namespace shares the host's
/// file system, so a file written here is visible inside at the same path. Deleted on dispose.
/// </summary>
public sealed class GuestFiles : IDisposable
{
    /// <summary>Creates an empty directory under /tmp.</summary>
    public GuestFiles()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("bm-e2e-").FullName;
        File.SetUnixFileMode(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
    }

    /// <summary>The directory's absolute path.</summary>
    public string Directory { get; }

    /// <summary>Writes an executable file and returns its absolute path.</summary>
    /// <param name="name">File name.</param>
    /// <param name="content">Its text.</param>
    public string Write(string name, string content)
    {
        string path = Path.Combine(Directory, name);
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return path;
    }

    /// <summary>A TCP port of <paramref name="address"/> that was free a moment ago (for <c>-p</c>).</summary>
    /// <param name="address">The address to probe.</param>
    public static int FreeTcpPort(IPAddress address)
    {
        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(address, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>A UDP port of <paramref name="address"/> that was free a moment ago (for <c>-p .../udp</c>).</summary>
    /// <param name="address">The address to probe.</param>
    public static int FreeUdpPort(IPAddress address)
    {
        using var socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(address, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A guest process may still hold a file; /tmp is cleaned eventually.
        }
    }
}
