using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// A UDP datagram the guest sent in IPv4 fragments reaches the host socket whole. Socket readiness is
/// real here, so the test pumps in a bounded loop with a short epoll wait, never sleeps.
/// </summary>
public class NetworkStackFragmentTests
{
    [Fact]
    public void FragmentedUdpDatagram_ReachesTheHostWhole()
    {
        using var host = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        ushort port = (ushort)((IPEndPoint)host.Client.LocalEndPoint!).Port;
        using var ctx = new StackTestContext();
        byte[] payload = new byte[3000];
        new Random(5).NextBytes(payload);
        byte[] udp = new byte[8 + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(udp, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(2), port);
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(4), (ushort)udp.Length);
        payload.CopyTo(udp.AsSpan(8));
        FillTransportChecksum4(GuestIp, GatewayIp, IpProtocol.Udp, udp, 6);
        byte[] datagram = Ipv4(GuestIp, GatewayIp, IpProtocol.Udp, udp);

        // Second fragment first: order must not matter.
        ctx.Inject(Ethernet(0x0800, Fragment(datagram, 1480, udp.Length - 1480, more: false)));
        ctx.Inject(Ethernet(0x0800, Fragment(datagram, 0, 1480, more: true)));
        host.Client.ReceiveTimeout = 10;
        byte[]? received = null;
        for (int i = 0; i < 500 && received is null; i++)
        {
            ctx.Stack.PumpOnce(10);
            if (host.Available > 0)
            {
                IPEndPoint? from = null;
                received = host.Receive(ref from);
            }
        }

        Assert.NotNull(received);
        Assert.Equal(payload, received);
        Assert.Equal(2, ctx.Counters.Reassembly.Fragments);
        Assert.Equal(1, ctx.Counters.Reassembly.Reassembled);
    }

    private static byte[] Fragment(byte[] datagram, int offset, int length, bool more)
    {
        var f = new byte[20 + length];
        datagram.AsSpan(0, 20).CopyTo(f);
        datagram.AsSpan(20 + offset, length).CopyTo(f.AsSpan(20));
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(2), (ushort)f.Length);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(6), (ushort)((more ? 0x2000 : 0) | (offset / 8)));
        f[10] = 0;
        f[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(10), InternetChecksum.Compute(f.AsSpan(0, 20)));
        return f;
    }
}
