using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Beemesh.Netstack.Forwarding;
using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// Traffic for an IPv6 guest address the stack has not heard from yet waits for neighbor discovery;
/// the solicitation must go to the target's solicited-node group (RFC 4291 §2.7.1), the only group
/// the guest listens on for it.
/// </summary>
public class NetworkStackNeighborSolicitationTests
{
    [Fact]
    public void UnknownIpv6Guest_IsSolicitedOnItsSolicitedNodeGroup()
    {
        using var ctx = new StackTestContext(ipv6: true);
        UInt128 guest = V6("fd00::5054:ff:fe12:3456");
        using var probe = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        int hostPort = ((IPEndPoint)probe.Client.LocalEndPoint!).Port;
        probe.Dispose();
        ctx.Stack.PortForwards.Add(ForwardProtocol.Udp, IPAddress.Loopback, hostPort, new IPAddress(Bytes(guest)), 5353);
        using var client = new UdpClient(AddressFamily.InterNetwork);
        client.Send(new byte[] { 1, 2, 3 }, new IPEndPoint(IPAddress.Loopback, hostPort));

        byte[]? ns = null;
        for (int i = 0; i < 500 && ns is null; i++)
        {
            ctx.Stack.PumpOnce(10);
            ns = ctx.Link.TakeAll().FirstOrDefault(f => f.Length >= 14 + 40 + 24 && f[14 + 6] == (byte)IpProtocol.Icmpv6 && f[14 + 40] == 135);
        }

        Assert.NotNull(ns);
        UInt128 destination = BinaryPrimitives.ReadUInt128BigEndian(ns.AsSpan(14 + 24));
        Assert.Equal(V6("ff02::1:ff12:3456"), destination);
        Assert.Equal(0x3333_FF12_3456UL, ReadMac(ns));
        Assert.Equal(guest, BinaryPrimitives.ReadUInt128BigEndian(ns.AsSpan(14 + 40 + 8)));
    }

    private static byte[] Bytes(UInt128 a)
    {
        var b = new byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(b, a);
        return b;
    }
}
