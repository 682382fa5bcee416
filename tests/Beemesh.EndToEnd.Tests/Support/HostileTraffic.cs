namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// A Python 3 program that attacks the stack from inside the guest through an AF_PACKET socket
/// on tap0 (the guest is root in its own namespace, so it holds CAP_NET_RAW there).
/// </summary>
public static class HostileTraffic
{
    /// <summary>
    /// <c>hostile.py CLOSED_PORTS LISTEN_PORT SYNS JUNK</c>: sends SYNS SYNs from random source
    /// ports to 10.0.2.2 on the comma-separated CLOSED_PORTS (random choice each time), SYNS/2
    /// SYNs to LISTEN_PORT, and JUNK malformed frames of many kinds (truncated headers, lying IPv4
    /// total length / IHL, TCP data offset, UDP length, bad IP/TCP/UDP/ICMP checksums, fragments,
    /// unknown ethertypes, random bytes), interleaved and paced a little so the tap's queue is not
    /// simply overrun. Prints <c>hostile-done syn=N junk=N refused=N</c> (refused = frames the
    /// kernel would not send, e.g. shorter than an Ethernet header).
    /// </summary>
    /// <remarks>
    /// The "random ports" are drawn from ports the test holds bound but not listening on host
    /// loopback: truly random ports could hit other services on the machine, and a SYN the stack
    /// forwards there would open a real connection to them.
    /// </remarks>
    public const string Program = """
        import random, socket, struct, sys, time
        closed = [int(p) for p in sys.argv[1].split(",")]
        listen_port, syns, junk = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        rnd = random.Random(20240611)
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind(("tap0", 0))
        my_mac = s.getsockname()[4]  # (ifname, proto, pkttype, hatype, address); /sys is the host's
        gw_mac = bytes.fromhex("52550a000202")
        me, gw = socket.inet_aton("10.0.2.100"), socket.inet_aton("10.0.2.2")

        def csum(b):
            if len(b) % 2:
                b += b"\0"
            t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
            while t >> 16:
                t = (t & 0xFFFF) + (t >> 16)
            return (~t) & 0xFFFF

        def eth(payload, etype=0x0800):
            return gw_mac + my_mac + struct.pack("!H", etype) + payload

        def ipv4(proto, payload, total=None, ihl=5, bad=False, frag=0):
            tl = 20 + len(payload) if total is None else total
            h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tl & 0xFFFF, rnd.randrange(65536), frag, 64, proto, 0, me, gw)
            c = csum(h) ^ (0x5555 if bad else 0)
            return h[:10] + struct.pack("!H", c) + h[12:] + payload

        def l4sum(proto, seg):
            return csum(me + gw + struct.pack("!BBH", 0, proto, len(seg)) + seg)

        def tcp(sport, dport, flags=0x02, payload=b"", doff=5, options=b"", bad=False):
            h = struct.pack("!HHIIBBHHH", sport, dport, rnd.randrange(1 << 32), 0, doff << 4, flags, 64240, 0, 0) + options + payload
            c = l4sum(6, h)
            if bad:
                c = (c ^ 0x1234) or 1
            return h[:16] + struct.pack("!H", c) + h[18:]

        def udp(sport, dport, payload, length=None, bad=False):
            l = 8 + len(payload) if length is None else length
            h = struct.pack("!HHHH", sport, dport, l & 0xFFFF, 0) + payload
            c = l4sum(17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)
            if bad:
                c = (c ^ 0x4321) or 1
            return h[:6] + struct.pack("!H", c or 0xFFFF) + h[8:]

        def rport():
            return rnd.randrange(1024, 65536)

        def junk_frame(k):
            p = rnd.choice(closed)
            kind = k % 20
            if kind == 0:
                return gw_mac + my_mac[:rnd.randrange(0, 6)]                     # shorter than Ethernet
            if kind == 1:
                return eth(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 20))))  # truncated IPv4 header
            if kind == 2:
                return eth(ipv4(6, tcp(rport(), p), total=1400))                 # total length beyond the frame
            if kind == 3:
                return eth(ipv4(6, tcp(rport(), p), total=12))                   # total length below the header
            if kind == 4:
                return eth(ipv4(6, tcp(rport(), p), ihl=3))                      # IHL below 5
            if kind == 5:
                return eth(ipv4(6, tcp(rport(), p), ihl=15))                     # IHL beyond the packet
            if kind == 6:
                return eth(ipv4(6, tcp(rport(), p), bad=True))                   # bad IPv4 header checksum
            if kind == 7:
                return eth(ipv4(6, tcp(rport(), p, doff=15)))                    # data offset beyond the segment
            if kind == 8:
                return eth(ipv4(6, tcp(rport(), p, doff=2)))                     # data offset below 5
            if kind == 9:
                return eth(ipv4(6, tcp(rport(), p)[:12]))                        # truncated TCP header
            if kind == 10:
                return eth(ipv4(6, tcp(rport(), p, bad=True)))                   # bad TCP checksum
            if kind == 11:
                return eth(ipv4(6, tcp(rport(), p, flags=0x18, payload=b"x" * 100, bad=True)))  # bad checksum with data
            if kind == 12:
                return eth(ipv4(6, tcp(rport(), p, doff=6, options=b"\x02\x28\x05\xb4")))  # MSS option with a lying length
            if kind == 13:
                return eth(ipv4(17, udp(rport(), p, b"hello", length=900)))     # UDP length beyond the datagram
            if kind == 14:
                return eth(ipv4(17, udp(rport(), p, b"hello", length=4)))       # UDP length below the header
            if kind == 15:
                return eth(ipv4(17, udp(rport(), p, b"payload", bad=True)))     # bad UDP checksum
            if kind == 16:
                icmp = struct.pack("!BBHHH", 8, 0, 0x1234, 1, 1) + b"ping"
                return eth(ipv4(1, icmp if k % 40 < 20 else icmp[:3]))          # bad ICMP checksum / truncated ICMP
            if kind == 17:
                return eth(ipv4(17, udp(rport(), p, b"frag"), frag=0x2000))      # a first fragment (MF set)
            if kind == 18:
                return eth(bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 200))),
                           etype=rnd.choice([0x1234, 0x88CC, 0x8100, 0x8847, 0x86DD, 0x0806, 0xFFFF]))  # other ethertypes, junk bodies
            return gw_mac + bytes(rnd.randrange(256) for _ in range(rnd.randrange(6, 1500)))  # random bytes

        refused = 0
        def send(frame):
            global refused
            try:
                s.send(frame)
            except OSError:
                refused += 1

        plan = ["syn"] * syns + ["listen"] * (syns // 2) + ["junk"] * junk
        rnd.shuffle(plan)
        sent_syn = sent_junk = 0
        for i, what in enumerate(plan):
            if what == "syn":
                send(eth(ipv4(6, tcp(rport(), rnd.choice(closed)))))
                sent_syn += 1
            elif what == "listen":
                send(eth(ipv4(6, tcp(rport(), listen_port))))
                sent_syn += 1
            else:
                send(junk_frame(sent_junk))
                sent_junk += 1
            if i % 200 == 199:
                time.sleep(0.002)
        print("hostile-done syn=%d junk=%d refused=%d" % (sent_syn, sent_junk, refused), flush=True)
        """;
}
