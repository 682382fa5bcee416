#!/usr/bin/env python3
"""Writes the seed corpora under corpus/ (deterministic; rerun after changing a seed)."""
import os, struct

here = os.path.dirname(os.path.abspath(__file__))
GUEST_MAC = bytes.fromhex("525400123456"); ROUTER_MAC = bytes.fromhex("52550a000202"); BCAST = b"\xff" * 6
GUEST4 = bytes([10, 0, 2, 100]); GW4 = bytes([10, 0, 2, 2]); DNS4 = bytes([10, 0, 2, 3])
GUEST6 = bytes.fromhex("fd000000000000000000000000000064"); GW6 = bytes.fromhex("fd000000000000000000000000000002")
DNS6 = bytes.fromhex("fd000000000000000000000000000003"); LL6 = bytes.fromhex("fe80000000000000505400fffe123456")

def csum(data):
    if len(data) % 2: data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF

def eth(dst, ethertype, payload): return dst + GUEST_MAC + struct.pack("!H", ethertype) + payload

def ipv4(src, dst, proto, payload, ident=1, frag=0x4000):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload

def l4sum4(src, dst, proto, seg): return csum(src + dst + struct.pack("!BBH", 0, proto, len(seg)) + seg)

def udp4(src, dst, sport, dport, data):
    u = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    c = l4sum4(src, dst, 17, u) or 0xFFFF
    return u[:6] + struct.pack("!H", c) + u[8:]

def tcp4(src, dst, sport, dport, seq, ack, flags, data=b"", opts=b""):
    off = (20 + len(opts)) // 4
    t = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 65535, 0, 0) + opts + data
    c = l4sum4(src, dst, 6, t)
    return t[:16] + struct.pack("!H", c) + t[18:]

def ipv6(src, dst, nh, payload, hops=64):
    return struct.pack("!IHBB", 0x60000000, len(payload), nh, hops) + src + dst + payload

def l4sum6(src, dst, nh, seg): return csum(src + dst + struct.pack("!IxxxB", len(seg), nh) + seg)

def icmp6(src, dst, typ, code, body):
    m = struct.pack("!BBH", typ, code, 0) + body
    return m[:2] + struct.pack("!H", l4sum6(src, dst, 58, m)) + m[4:]

def udp6(src, dst, sport, dport, data):
    u = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    return u[:6] + struct.pack("!H", l4sum6(src, dst, 17, u) or 0xFFFF) + u[8:]

dns_query = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x07example\x03org\x00" + struct.pack("!HH", 1, 1)
dns_aaaa = struct.pack("!HHHHHH", 0x4321, 0x0100, 1, 0, 0, 1) + b"\x03www\xc0\x0c" + struct.pack("!HH", 28, 1) + b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00"
dns_response = struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0) + b"\x07example\x03org\x00" + struct.pack("!HH", 1, 1) + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([93, 184, 216, 34])

def dhcp(msgtype, extra=b""):
    bootp = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, 0xC0FFEE, 0, 0x8000, b"\0" * 4, b"\0" * 4, b"\0" * 4, b"\0" * 4, GUEST_MAC + b"\0" * 10, b"\0" * 64, b"\0" * 128)
    return bootp + b"\x63\x82\x53\x63" + bytes([53, 1, msgtype]) + extra + bytes([55, 3, 1, 3, 6, 255])

def arp(op, target_ip, target_mac=b"\0" * 6):
    return struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + GUEST_MAC + GUEST4 + target_mac + target_ip

def rec(*frames): return b"".join(struct.pack("!H", len(f)) + f for f in frames)

mss = b"\x02\x04\x05\xb4\x04\x02\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x00\x01\x03\x03\x07"
big = bytes(range(256)) * 8
frag_payload = udp4(GUEST4, GW4, 40000, 9, big)
packet = {
    "arp-request": rec(eth(BCAST, 0x0806, arp(1, GW4))),
    "arp-reply": rec(eth(ROUTER_MAC, 0x0806, arp(2, GW4, ROUTER_MAC))),
    "icmp-echo": rec(eth(ROUTER_MAC, 0x0800, ipv4(GUEST4, GW4, 1, b"\x08\x00" + struct.pack("!H", csum(b"\x08\x00\x00\x00\x00\x01\x00\x01pingdata")) + b"\x00\x01\x00\x01pingdata"))),
    "udp-dns": rec(eth(ROUTER_MAC, 0x0800, ipv4(GUEST4, DNS4, 17, udp4(GUEST4, DNS4, 33333, 53, dns_query)))),
    "dhcp-discover-request": rec(eth(BCAST, 0x0800, ipv4(b"\0" * 4, b"\xff" * 4, 17, udp4(b"\0" * 4, b"\xff" * 4, 68, 67, dhcp(1)))),
                                 eth(BCAST, 0x0800, ipv4(b"\0" * 4, b"\xff" * 4, 17, udp4(b"\0" * 4, b"\xff" * 4, 68, 67, dhcp(3, bytes([50, 4, 10, 0, 2, 15])))))),
    "tcp-handshake-data-fin": rec(
        eth(ROUTER_MAC, 0x0800, ipv4(GUEST4, GW4, 6, tcp4(GUEST4, GW4, 40001, 80, 1000, 0, 0x02, opts=mss))),
        eth(ROUTER_MAC, 0x0800, ipv4(GUEST4, GW4, 6, tcp4(GUEST4, GW4, 40001, 80, 1001, 1, 0x10))),
        eth(ROUTER_MAC, 0x0800, ipv4(GUEST4, GW4, 6, tcp4(GUEST4, GW4, 40001, 80, 1001, 1, 0x18, b"GET / HTTP/1.0\r\n\r\n"))),
        eth(ROUTER_MAC, 0x0800, ipv4(GUEST4, GW4, 6, tcp4(GUEST4, GW4, 40001, 80, 1019, 1, 0x11))),
        eth(ROUTER_MAC, 0x0800, ipv4(GUEST4, GW4, 6, tcp4(GUEST4, GW4, 40001, 80, 1020, 1, 0x04)))),
    "ipv4-fragments": rec(
        eth(ROUTER_MAC, 0x0800, ipv4(GUEST4, GW4, 17, frag_payload[:1480], ident=77, frag=0x2000)),
        eth(ROUTER_MAC, 0x0800, ipv4(GUEST4, GW4, 17, frag_payload[1480:], ident=77, frag=1480 // 8))),
    "ndp-solicit": rec(eth(bytes.fromhex("3333ff000002"), 0x86DD, ipv6(LL6, bytes.fromhex("ff0200000000000000000001ff000002"), 58,
        icmp6(LL6, bytes.fromhex("ff0200000000000000000001ff000002"), 135, 0, b"\0" * 4 + GW6 + b"\x01\x01" + GUEST_MAC), hops=255))),
    "ndp-router-solicit": rec(eth(bytes.fromhex("333300000002"), 0x86DD, ipv6(LL6, bytes.fromhex("ff020000000000000000000000000002"), 58,
        icmp6(LL6, bytes.fromhex("ff020000000000000000000000000002"), 133, 0, b"\0" * 4 + b"\x01\x01" + GUEST_MAC), hops=255))),
    "icmp6-echo": rec(eth(ROUTER_MAC, 0x86DD, ipv6(GUEST6, GW6, 58, icmp6(GUEST6, GW6, 128, 0, b"\x00\x07\x00\x01ping6")))),
    "udp6-dns": rec(eth(ROUTER_MAC, 0x86DD, ipv6(GUEST6, DNS6, 17, udp6(GUEST6, DNS6, 33334, 53, dns_aaaa)))),
    "raw-single-frame": eth(ROUTER_MAC, 0x0800, ipv4(GUEST4, DNS4, 17, udp4(GUEST4, DNS4, 33335, 53, dns_query))),
}

api = {
    "add-tcp": b'{"execute": "add_hostfwd", "arguments": {"proto": "tcp", "host_addr": "127.0.0.1", "host_port": 8080, "guest_port": 80}}',
    "add-udp-guest": b'{"execute": "add_hostfwd", "arguments": {"proto": "udp", "host_addr": "0.0.0.0", "host_port": 5353, "guest_addr": "10.0.2.100", "guest_port": 53}}',
    "add-v6": b'{"execute": "add_hostfwd", "arguments": {"proto": "tcp", "host_addr": "::1", "host_port": 8443, "guest_addr": "fd00::64", "guest_port": 443}}',
    "list": b'{"execute": "list_hostfwd"}',
    "remove": b'{"execute": "remove_hostfwd", "arguments": {"id": 1}}',
    "escapes": b'{"execute": "add_hostfwd", "arguments": {"proto": "t\\u0063p", "host_addr": "127.0.0.1", "host_port": 1.5e3, "guest_port": -1, "x": [null, true, false, {"a": "\\ud83d\\ude00"}]}}',
    "deep": b'{"a":' * 200 + b'1' + b'}' * 200,
    "garbage": b'{"execute": "add_hostfwd", "arguments": {"proto": "tcp", "host_port": 65536, "guest_port": 0}',
}

head = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: shop\nspec:\n"
bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))
policy = {
    "allow-from": head + "  action: ALLOW\n  rules:\n  - from:\n    - source:\n        principals: [\"example.org/ns/shop/sa/web\"]\n        namespaces: [shop]\n    to:\n    - operation:\n        ports: [\"8080\"]\n        methods: [GET]\n        paths: [\"/api/*\"]\n    when:\n    - key: request.headers[x-user]\n      values: [\"ali*\"]\n",
    "deny-selector": head + "  selector:\n    matchLabels: {app: web}\n  action: DENY\n  rules:\n  - from:\n    - source:\n        notIpBlocks: [\"10.0.0.0/8\", \"fd00::/64\"]\n",
    "two-docs": head + "  action: AUDIT\n  rules: [{}]\n---\n" + head.replace("name: p", "name: q") + "  rules: []\n",
    "alias-bomb": bomb + head + "  action: ALLOW\n  rules: *i\n",
    "alias-bomb-in-spec": head + "  action: ALLOW\n  rules:\n  - from: &f [{source: {principals: [a, b, c, d, e, f, g, h]}}]\n    to: *f\n  - from: *f\n",
    "deep-nesting": head + "  rules: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep-mapping": head + "  rules:\n" + "".join("  " * (i + 2) + f"k{i}:\n" for i in range(300)),
    "bad-types": head + "  action: 7\n  rules: {a: b}\n  selector: [1]\n",
}

tunnel = {
    "one-frame-fin": struct.pack("!I", 5) + b"hello" + struct.pack("!I", 0),
    "three-frames": struct.pack("!I", 3) + b"abc" + struct.pack("!I", 1) + b"d" + struct.pack("!I", 2) + b"ef" + struct.pack("!I", 0),
    "no-fin": struct.pack("!I", 4) + b"data",
    "short-header": b"\x00\x00",
    "negative-length": struct.pack("!i", -1) + b"x",
    "too-long": struct.pack("!I", (1 << 20) + 1) + b"x" * 16,
    "truncated-body": struct.pack("!I", 100) + b"only a little",
}

dns = {"query": dns_query, "aaaa-edns": dns_aaaa, "response": dns_response, "short": dns_query[:11], "header-only": dns_query[:12]}

for target, seeds in {"packet": packet, "slirp-api": api, "policy-yaml": policy, "tunnel-frames": tunnel, "dns": dns}.items():
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
