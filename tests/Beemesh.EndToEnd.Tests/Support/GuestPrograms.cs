namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// Python 3 programs the tests run inside the namespace (standard library only). Each prints one
/// result line the test parses; they exit non-zero when something is wrong.
/// </summary>
public static class GuestPrograms
{
    /// <summary>
    /// <c>tcp_client.py HOST PORT MESSAGE</c>: sends MESSAGE and a newline, half-closes, prints
    /// <c>reply:TEXT</c> with everything read until the server closes. A refused connect prints
    /// <c>refused MS</c> (exit 3), a timeout <c>timeout</c> (exit 4).
    /// </summary>
    public const string TcpClient = """
        import socket, sys, time
        host, port, message = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        start = time.monotonic()
        try:
            s = socket.create_connection((host, port), timeout=20)
        except ConnectionRefusedError:
            print("refused %.0f" % ((time.monotonic() - start) * 1000), flush=True)
            sys.exit(3)
        except (socket.timeout, TimeoutError):
            print("timeout", flush=True)
            sys.exit(4)
        s.sendall(message.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        print("reply:" + data.decode().rstrip("\n"), flush=True)
        """;

    /// <summary>
    /// <c>udp_echo.py HOST PORT COUNT</c>: sends COUNT datagrams of different sizes and contents,
    /// checks each echo byte for byte, prints <c>udp-ok N</c> (or <c>udp-bad ...</c>, exit 1).
    /// </summary>
    public const string UdpEcho = """
        import socket, sys, os
        host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        ok = 0
        for i in range(count):
            size = [1, 17, 512, 1000, 1472][i % 5]
            payload = (b"%06d:" % i + os.urandom(size))[:size]
            for attempt in range(3):
                s.sendto(payload, (host, port))
                try:
                    data, peer = s.recvfrom(65535)
                except socket.timeout:
                    continue
                break
            else:
                print("udp-bad timeout on datagram %d" % i, flush=True)
                sys.exit(1)
            if data != payload or peer != (host, port):
                print("udp-bad datagram %d: %d bytes back from %s" % (i, len(data), peer), flush=True)
                sys.exit(1)
            ok += 1
        print("udp-ok %d" % ok, flush=True)
        """;

    /// <summary>
    /// <c>dns_tcp.py SERVER NAME</c>: asks for NAME's A record over TCP (RFC 1035 §4.2.2, two-byte
    /// length prefix) and prints <c>tcp-dns RCODE ADDRESS...</c>.
    /// </summary>
    public const string DnsOverTcp = """
        import socket, struct, sys
        server, name = sys.argv[1], sys.argv[2]
        question = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack("!HH", 1, 1)
        query = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + question
        s = socket.create_connection((server, 53), timeout=10)
        s.sendall(struct.pack("!H", len(query)) + query)
        def read(n):
            data = b""
            while len(data) < n:
                chunk = s.recv(n - len(data))
                if not chunk:
                    raise SystemExit("connection closed after %d of %d bytes" % (len(data), n))
                data += chunk
            return data
        length, = struct.unpack("!H", read(2))
        reply = read(length)
        ident, flags, qd, an = struct.unpack("!HHHH", reply[:8])
        assert ident == 0x4242, "wrong id"
        at = 12 + len(question)
        addresses = []
        for _ in range(an):
            if reply[at] & 0xC0 == 0xC0:
                at += 2
            else:
                while reply[at]:
                    at += reply[at] + 1
                at += 1
            rtype, rclass, ttl, rdlength = struct.unpack("!HHIH", reply[at:at + 10])
            at += 10
            if rtype == 1:
                addresses.append(socket.inet_ntoa(reply[at:at + rdlength]))
            at += rdlength
        print("tcp-dns %d %s" % (flags & 0xF, " ".join(addresses)), flush=True)
        """;

    /// <summary>
    /// <c>peer_server.py tcp|udp PORT COUNT</c>: listens on PORT of every address, prints
    /// <c>READY</c>, then answers COUNT connections (or datagrams) with <c>peer ADDRESS</c> and
    /// prints the same line; the test compares the addresses with the clients it used.
    /// </summary>
    public const string PeerServer = """
        import socket, sys
        kind, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        if kind == "tcp":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            s.listen(16)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", port))
        s.settimeout(60)
        print("READY", flush=True)
        for _ in range(count):
            if kind == "tcp":
                c, peer = s.accept()
                c.sendall(b"peer %s\n" % peer[0].encode())
                c.close()
            else:
                data, peer = s.recvfrom(2048)
                s.sendto(b"peer %s\n" % peer[0].encode(), peer)
            print("peer %s" % peer[0], flush=True)
        """;

    /// <summary>
    /// <c>many_connections.py HOST PORT COUNT</c>: starts COUNT non-blocking connects at once,
    /// waits until all are established, sends a distinct line on each, reads each echo back, then
    /// closes them all. Prints <c>connected N</c>, <c>echoed N</c> and exits 1 on any failure.
    /// </summary>
    public const string ManyConnections = """
        import errno, resource, select, socket, sys, time
        host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        poller = select.poll()
        socks = {}
        for i in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex((host, port))
            if rc not in (0, errno.EINPROGRESS):
                print("connect %d failed at once: %s" % (i, errno.errorcode.get(rc, rc)), flush=True)
                sys.exit(1)
            socks[s.fileno()] = (i, s)
            poller.register(s, select.POLLOUT)
        pending = set(socks)
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for fd, ev in poller.poll(1000):
                if fd in pending:
                    err = socks[fd][1].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        print("connect %d failed: %s" % (socks[fd][0], errno.errorcode.get(err, err)), flush=True)
                        sys.exit(1)
                    pending.discard(fd)
                    poller.unregister(fd)
        if pending:
            print("%d connects still pending after 60 s" % len(pending), flush=True)
            sys.exit(1)
        print("connected %d" % len(socks), flush=True)
        for i, s in socks.values():
            s.setblocking(True)
            s.settimeout(30)
            s.sendall(b"line %d\n" % i)
        ok = 0
        for i, s in socks.values():
            expected = b"line %d\n" % i
            got = b""
            while len(got) < len(expected):
                chunk = s.recv(len(expected) - len(got))
                if not chunk:
                    break
                got += chunk
            if got == expected:
                ok += 1
            else:
                print("connection %d echoed %r" % (i, got), flush=True)
        for i, s in socks.values():
            s.close()
        print("echoed %d" % ok, flush=True)
        sys.exit(0 if ok == count else 1)
        """;

    /// <summary>
    /// <c>bulk_send.py HOST PORT</c>: copies stdin to a TCP connection in 1 MiB chunks, hashing
    /// with SHA-256 on the way, half-closes, waits for the server to close, prints <c>sent N HEX</c>.
    /// hashlib uses the CPU's SHA extensions (about 1.8 GB/s here, against 0.4 GB/s for coreutils
    /// sha256sum), so hashing never limits the transfer.
    /// </summary>
    public const string BulkSend = """
        import hashlib, socket, sys
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=120)
        h = hashlib.sha256()
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        src = sys.stdin.buffer.raw
        total = 0
        while True:
            n = src.readinto(view)
            if not n:
                break
            h.update(view[:n])
            s.sendall(view[:n])
            total += n
        s.shutdown(socket.SHUT_WR)
        while s.recv(4096):
            pass
        print("sent %d %s" % (total, h.hexdigest()), flush=True)
        """;

    /// <summary>
    /// <c>bulk_recv.py HOST PORT</c>: reads a TCP connection to its end, hashing with SHA-256,
    /// then closes and prints <c>received N HEX</c>.
    /// </summary>
    public const string BulkReceive = """
        import hashlib, socket, sys
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=120)
        h = hashlib.sha256()
        buf = bytearray(4 << 20)
        view = memoryview(buf)
        total = 0
        while True:
            n = s.recv_into(view)
            if not n:
                break
            h.update(view[:n])
            total += n
        s.close()
        print("received %d %s" % (total, h.hexdigest()), flush=True)
        """;

    /// <summary>
    /// <c>peer_client.py tcp|udp HOST PORT</c>: the client for <see cref="PeerServer"/>, run on
    /// the host or in a test's own namespace: prints the server's one-line answer.
    /// </summary>
    public const string PeerClient = """
        import socket, sys
        kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
        if kind == "tcp":
            s = socket.create_connection((host, port), timeout=10)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(2)
            for attempt in range(5):
                s.sendto(b"who am i", (host, port))
                try:
                    data = s.recv(4096)
                    break
                except socket.timeout:
                    data = b"timeout"
        print(data.decode().strip(), flush=True)
        """;
}
