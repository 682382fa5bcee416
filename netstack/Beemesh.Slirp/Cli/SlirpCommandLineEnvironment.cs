using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Beemesh.Slirp.Cli;

/// <summary>
/// The few facts about the machine that command-line validation needs, so tests can replace them:
/// whether a path exists (<c>access(2)</c> with F_OK, which follows the magic links under /proc),
/// the address of a named interface, and whether <c>POSIXLY_CORRECT</c> disables operand permutation.
/// </summary>
internal sealed partial class SlirpCommandLineEnvironment
{
    /// <summary>The real machine.</summary>
    public static SlirpCommandLineEnvironment System { get; } = new(
        AccessErrno,
        FirstInterfaceAddress,
        Environment.GetEnvironmentVariable("POSIXLY_CORRECT") is not null);

    public SlirpCommandLineEnvironment(Func<string, int> pathErrno, Func<string, AddressFamily, IPAddress?> interfaceAddress, bool posixlyCorrect)
    {
        PathErrno = pathErrno;
        InterfaceAddress = interfaceAddress;
        PosixlyCorrect = posixlyCorrect;
    }

    /// <summary>0 when the path exists, otherwise the errno of <c>access(path, F_OK)</c>.</summary>
    public Func<string, int> PathErrno { get; }

    /// <summary>The first address of the given family on the named interface, or null (like a getifaddrs walk).</summary>
    public Func<string, AddressFamily, IPAddress?> InterfaceAddress { get; }

    /// <summary>True when operands stop option processing (the POSIXLY_CORRECT environment variable is set).</summary>
    public bool PosixlyCorrect { get; }

    /// <summary>strerror text for an errno, as perror prints it.</summary>
    public static string ErrnoMessage(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    private static int AccessErrno(string path)
    {
        if (Access(path, 0) == 0)
        {
            return 0;
        }

        return Marshal.GetLastPInvokeError();
    }

    private static IPAddress? FirstInterfaceAddress(string name, AddressFamily family)
    {
        try
        {
            foreach (NetworkInterface nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                if (nic.Name != name)
                {
                    continue;
                }

                foreach (UnicastIPAddressInformation address in nic.GetIPProperties().UnicastAddresses)
                {
                    if (address.Address.AddressFamily == family)
                    {
                        return address.Address;
                    }
                }
            }
        }
        catch (NetworkInformationException)
        {
            return null;
        }

        return null;
    }

    [LibraryImport("libc", EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Access(string path, int mode);
}
