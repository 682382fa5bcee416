#!/usr/bin/env python3
"""Writes the seed corpora under corpus/ (deterministic; rerun after changing a seed).
Files named afl-crash-* are inputs AFL++ found crashing (since fixed), kept as seeds; this script leaves them."""
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

def h2(kind, flags, stream, payload): return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack("!I", stream) + payload
connect_block = bytes([0x02, 7]) + b"CONNECT" + bytes([0x01, 13]) + b"10.0.0.2:8080"  # literal, static name index
tunnel = {
    "settings-connect-data-end": h2(4, 0, 0, struct.pack("!HI", 4, 65535)) + h2(1, 4, 1, connect_block) + h2(0, 0, 1, b"hello") + h2(0, 1, 1, b""),
    "continuation": h2(4, 0, 0, b"") + h2(1, 0, 1, connect_block[:5]) + h2(9, 4, 1, connect_block[5:]) + h2(8, 0, 1, struct.pack("!I", 1000)),
    "huffman-indexed": h2(4, 0, 0, b"") + h2(1, 4, 3, bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff")) + h2(1, 5, 5, bytes.fromhex("be")),
    "ping-goaway-rst": h2(6, 0, 0, b"12345678") + h2(3, 0, 1, struct.pack("!I", 8)) + h2(7, 0, 0, struct.pack("!II", 1, 0)),
    "padded": h2(4, 0, 0, b"") + h2(0, 8, 1, b"\x02ok\x00\x00") + h2(1, 0x2c, 3, b"\x01\x00\x00\x00\x00\x10\x82\x00"),
    "bad-size": h2(4, 0, 0, b"\x00" * 5),
    "too-long": struct.pack("!I", 1 << 20)[1:] + b"\x00\x00\x00\x00\x01",
}

dns = {"query": dns_query, "aaaa-edns": dns_aaaa, "response": dns_response, "short": dns_query[:11], "header-only": dns_query[:12]}

# --- admin-api: requests separated by NUL, "METHOD PATH?QUERY" then the body ---
def reqs(*rs): return b"\0".join(r.encode() if isinstance(r, str) else r for r in rs)
register_web = 'POST /v1/workloads\n{"name": "web", "namespace": "shop", "pid": 4000001, "tunnelEndpoint": "127.0.0.1:9000", "ports": [{"port": 8080}, {"port": 8081, "protocol": "http"}]}'
admin = {
    "register-resolve-delete": reqs(register_web, "GET /v1/resolve?name=web.shop", "GET /v1/resolve-address?address=10.200.0.1",
                                    "GET /v1/workloads", "GET /v1/status", "DELETE /v1/workloads/w1", "GET /v1/workloads/watch?since=0&timeout=1"),
    "register-twice-conflict": reqs(register_web, register_web, 'POST /v1/workloads\n{"name": "db", "namespace": "shop", "pid": 4000001, "tunnelEndpoint": "127.0.0.1:9001"}',
                                    'POST /v1/workloads\n{"name": "db", "pid": 4000002, "tunnelEndpoint": "127.0.0.1:15008"}'),
    "register-refused": reqs('POST /v1/workloads\n{"name": "x", "pid": 1, "tunnelEndpoint": "127.0.0.1:1"}', 'POST /v1/workloads\n{"name": "Bad_Name", "pid": 4000003}',
                             'POST /v1/workloads\n{"name": "x", "pid": 99, "tunnelEndpoint": "127.0.0.1:1"}', 'POST /v1/workloads\n{"name": "x", "pid": 4000009, "tunnelEndpoint": "127.0.0.1:1"}', 'POST /v1/workloads\n{"name": "x", "pid": 4000003, "tunnelEndpoint": "[::1]:1"}', 'POST /v1/workloads\n{"name": "x", "namespace": "", "pid": 4000003, "ports": [{"port": 70000}]}', 'POST /v1/workloads\n{"name": "y", "pid": 4000003, "tunnelEndpoint": "127.0.0.1:2", "ports": [{"port": 53, "protocol": "udp"}]}'),
    "policies-apply-list-delete": reqs("POST /v1/policies\n" + policy["allow-from"], "GET /v1/policies", "GET /v1/policies/watch?since=e:1&timeout=0",
                                       "DELETE /v1/policies/shop/p", "DELETE /v1/policies/shop/none"),
    "policies-refused": reqs("POST /v1/policies\n" + policy["alias-bomb"], "POST /v1/policies\n" + policy["bad-types"], "POST /v1/policies\n" + "x" * 17000),
    "connections": reqs(register_web, 'POST /v1/connections\n{"workloadId": "w1", "connections": [{"peer": "10.0.0.1:5", "port": 80, "direction": "inbound", "policy": "allow"}], "svidSerial": "0a1b", "svidNotAfter": "2026-01-01T01:00:00Z", "mesh": {}}',
                        'POST /v1/connections\n{"workloadId": "w9", "connections": [null]}', "GET /v1/status"),
    "bad-json": reqs("POST /v1/workloads\n{\"name\": ", "POST /v1/connections\n[]", "POST /v1/connections\nnull", "GET /v1/resolve", "GET /v1/resolve-address?address=nope"),
    "mesh-and-unknown": reqs("GET /metrics", "GET /v1/members", "DELETE /v1/nodes/n2", "PUT /v1/workloads", "GET //v1//workloads/", "GET /v1/workloads/watch?since=x:y", "GET /v1/policies/watch?timeout=abc"),
}

# --- workload-api: a mode byte, then a protobuf message (or JWKS / signed claims) ---
import base64, hashlib, json, subprocess  # openssl derives the signing key's id
def varint(n):
    out = b""
    while True:
        b = n & 0x7F; n >>= 7
        if n: out += bytes([b | 0x80])
        else: return out + bytes([b])
def pb_str(field, value): value = value.encode() if isinstance(value, str) else value; return varint(field << 3 | 2) + varint(len(value)) + value
def b64u(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
signing_pem = open(os.path.join(here, "WorkloadApiTarget.cs")).read().split('"""')[1]
signing_pem = "\n".join(l.strip() for l in signing_pem.strip().splitlines()) + "\n"
spki = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"], input=signing_pem.encode(), capture_output=True, check=True).stdout
kid = b64u(hashlib.sha256(spki).digest()); point = spki[-64:]
jwt_header = json.dumps({"alg": "ES256", "kid": kid, "typ": "JWT"}).encode()
claims = {"sub": "spiffe://fuzz.example/ns/shop/sa/web", "aud": ["db", "cache"], "exp": 1893456000, "iat": 1767225600}
fake_token = b64u(jwt_header) + "." + b64u(json.dumps(claims).encode()) + "." + b64u(b"\1" * 64)
workload = {
    "validate-unknown-key": b"\0" + pb_str(1, "db") + pb_str(2, fake_token),
    "validate-garbage": b"\0" + pb_str(1, "db") + pb_str(2, "a.b.c"),
    "validate-empty": b"\0",
    "validate-no-header": b"\x80" + pb_str(1, "db") + pb_str(2, fake_token),
    "fetch-jwt": b"\1" + pb_str(1, "db") + pb_str(1, "cache"),
    "fetch-jwt-own-id": b"\1" + pb_str(1, "db") + pb_str(2, "spiffe://fuzz.example/ns/default/sa/fuzz"),
    "fetch-jwt-other-id": b"\1" + pb_str(1, "db") + pb_str(2, "spiffe://fuzz.example/ns/x/sa/y"),
    "fetch-jwt-unattested": b"\x41" + pb_str(1, "db"),
    "jwt-bundles": b"\2",
    "x509-bundles": b"\3",
    "x509-svid": b"\4",
    "x509-svid-unknown-field": b"\4" + pb_str(9, "x") + b"\x10\x01",
    "jwks": b"\5" + json.dumps({"keys": [{"kty": "EC", "use": "jwt-svid", "kid": kid, "crv": "P-256", "x": b64u(point[:32]), "y": b64u(point[32:])},
                                          {"kty": "EC", "kid": "off-curve", "crv": "P-256", "x": b64u(b"\1" * 32), "y": b64u(b"\2" * 32)},
                                          {"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}]}).encode(),
    "jwks-bad": b"\5" + b'{"keys": [{"kty": "EC", "crv": "P-256", "kid": "k", "x": "!!", "y": "AA"}]}',
    "signed-valid": b"\6" + jwt_header + b"\0" + json.dumps(claims).encode() + b"\0db",
    "signed-odd-claims": b"\6" + jwt_header + b"\0" + json.dumps({"sub": "spiffe://fuzz.example/a", "aud": "db", "exp": 1893456000, "n": 1e308, "m": -0.0, "deep": [[{"a": None}]], "s": "\ud83d\ude00"}).encode() + b"\0db",
    "signed-expired": b"\6" + jwt_header + b"\0" + json.dumps({"sub": "spiffe://fuzz.example/a", "aud": "db", "exp": 1}).encode() + b"\0db",
    "signed-foreign": b"\6" + jwt_header + b"\0" + json.dumps({"sub": "spiffe://other.example/a", "aud": ["db"], "exp": 1893456000}).encode() + b"\0db",
    "signed-alg-none": b"\6" + b'{"alg": "none"}' + b"\0" + b"{}" + b"\0db",
    # AFL++ found JWT-SVID requests naming thousands of audiences (ten newlines each) whose token took
    # 2.2-2.8 s to issue and check; the server now refuses more than 32, and empty ones. These two keep
    # that case in the corpus at a size that stays small in git (each tag byte 0x0a is a newline).
    "many-audiences": b"\1" + b"".join(pb_str(1, "aud%d" % i) for i in range(33)),
    "many-empty-audiences": b"\1" + pb_str(1, "db") + pb_str(1, "") * 40,
}

# --- join-token: mode byte 0 a printed token; 1/2 join frames (u32 length, JSON) ---
fp = "ab" * 32
def join_frame(msg): body = json.dumps(msg).encode(); return struct.pack("!I", len(body)) + body
# Two P-256 certificate signing requests (openssl req -new -outform DER), fixed so the seeds are.
ca_req = bytes.fromhex(
    "3081c8306f020100300d310b300906035504030c0263613059301306072a8648ce3d020106082a8648ce3d03010703420004"
    "ac8814841fc27aa413d47cdf47c973bdfb23ff3c8bf20ad88632cb9001af645bf227c15aca37415f064c25b4db05a3eb5873"
    "492656cc6e5920d895acc9d29d7ea000300a06082a8648ce3d0403020349003046022100ea6e8f74370e4f0791f971c661c0"
    "27c95aa9ece7bbd38b9118858d192387c15a022100bdc6b491da0e306885eb6b8f8ce7b7f0f4ded2ac7d3317465e533bc694"
    "ffe67c")
svid_req = bytes.fromhex(
    "3081ca3071020100300f310d300b06035504030c04737669643059301306072a8648ce3d020106082a8648ce3d0301070342"
    "0004880e713087211ce26d04cd6d44c252051298bfe49aa5ef259f55d15aa989915ee43456e454edc02e8dabe679714185f5"
    "556148069f77b278cd8da90ff4087e8ea000300a06082a8648ce3d04030203490030460221008504a9231f1533705e56f4ad"
    "df14abd5b44a4bfb467ab0db5f48de81878c12f6022100c5f28a0783e83719cb99d51e33a46c3e675c18dad5db9c4627491c"
    "4ba89ad46f")
def join_msg(name="node2", ca=ca_req, svid=svid_req, token="abcdefgh"):
    return {"type": "join", "tokenId": token, "nodeName": name, "nodeCaRequest": base64.b64encode(ca).decode(),
            "nodeSvidRequest": base64.b64encode(svid).decode(), "proof": base64.b64encode(b"\0" * 32).decode()}
join = {
    "token-valid": b"\0bmt1.abcdefgh.abcdefghijklmnopqrstuvwxyz." + ("sha256-" + fp).encode(),
    "token-padded": b"\0  bmt1.aaaaaaaa.22222222222222222222222222.sha256-" + fp.encode() + b"\n",
    "token-bad-parts": b"\0bmt1.abc.def",
    "token-bad-fp": b"\0bmt1.abcdefgh.abcdefghijklmnopqrstuvwxyz.sha1-" + fp.encode(),
    "token-other-format": b"\0bmt2.abcdefgh.abcdefghijklmnopqrstuvwxyz.sha256-" + fp.upper().encode(),
    "frames-join-bad-proof": b"\1" + join_frame(join_msg()),
    "frames-refuse": b"\1" + join_frame({"type": "refuse", "message": "wrong root"}),
    "frames-malformed": b"\1" + join_frame(join_msg(token="ABCDEFGH")) + join_frame(join_msg(name="Bad.Name")) + join_frame({"type": "hello"}) + b"\0\0\0\5{\"a\":",
    "frames-no-type": b"\1" + join_frame({"nodeName": "x"}),
    "frames-oversized": b"\1" + struct.pack("!I", 1 << 20) + b"{}",
    "valid-join": b"\2" + join_frame(join_msg()) + join_frame(join_msg()) + join_frame(join_msg(name="node3")),
    "valid-join-same-keys": b"\2" + join_frame(join_msg(svid=ca_req)),
    "valid-join-bad-csr": b"\2" + join_frame(join_msg(ca=ca_req[:-10])) + join_frame(join_msg(name="first")),
}

# --- gossip-records: a flags byte (1 hello first, 2 re-sign the peer's records), then overlay frames ---
def node_id(name): return struct.unpack("!Q", hashlib.sha256(f"spiffe://fuzz.example/node/{name}".encode()).digest()[:8])[0]
PEER, OTHER = node_id("peer"), node_id("other")
def ov_frame(typ, body=b""): return struct.pack("!IB", 1 + len(body), typ) + body
def ov_peer(pid, ep=None):
    if ep is None: return struct.pack("!QB", pid, 0)
    addr, port = ep
    return struct.pack("!QB", pid, 4 if len(addr) == 4 else 6) + addr + struct.pack("!H", port)
def ov_key(k): k = k.encode(); return struct.pack("!H", len(k)) + k
def ov_version(phys, logical, origin): return struct.pack("!qIQ", phys, logical, origin)
def ov_record(kind, key, subject, version, expires, tomb, payload, sig=b""):
    return bytes([kind]) + ov_key(key) + struct.pack("!Q", subject) + version + struct.pack("!qB", expires, tomb) + struct.pack("!I", len(payload)) + payload + struct.pack("!H", len(sig)) + sig
def ov_id(kind, key, version): return bytes([kind]) + ov_key(key) + version
v1 = ov_version(1_000_000_000, 0, PEER)
node_payload = json.dumps({"name": "peer", "overlay": "10.0.0.2:15009", "tunnel": "10.0.0.2:15008", "meshBlock": "10.200.1.0/24"}).encode()
route_payload = json.dumps({"id": "w1", "name": "web", "namespace": "shop", "pid": 7, "spiffeId": "spiffe://fuzz.example/ns/shop/sa/web", "meshAddress": "10.200.1.2"}).encode()
# A self-signed certificate naming the peer (openssl req -x509): a chain the trust domain did not sign.
foreign_cert = bytes.fromhex(
    "308201a63082014da003020102021471511df8d6d834f9a7e11cc01346443badc8824c300a06082a8648ce3d040302301331"
    "11300f06035504030c08737472616e676572301e170d3236313230373033343235305a170d3336313230343033343235305a"
    "30133111300f06035504030c08737472616e6765723059301306072a8648ce3d020106082a8648ce3d030107034200040b2c"
    "d2086318e53693cba7c3669e9de474975f5f746f255871bd268cdb3e732390516d1cdc049d9569baf894c222bb23e4da3774"
    "35128525983cbb7491b48dc6a37f307d301d0603551d0e04160414214ee08cff15a54d74f667447b68a7f9132e6b29301f06"
    "03551d23041830168014214ee08cff15a54d74f667447b68a7f9132e6b29300f0603551d130101ff040530030101ff302a06"
    "03551d1104233021861f7370696666653a2f2f66757a7a2e6578616d706c652f6e6f64652f70656572300a06082a8648ce3d"
    "04030203470030440220341a7c4fca75e6d2109e9b78770e9733b78640201f44c7a0f98f1eeef3ec13b80220671779dacfae"
    "939f5f5610f291c54685b32a5e3401ff833cdbd7bd443849b011")
hello = ov_frame(1, ov_peer(PEER, (bytes([10, 0, 0, 2]), 15009)) + struct.pack("!H", 1))
gossip = {
    "hello-join-ping": b"\1" + hello + ov_frame(2, ov_peer(PEER)) + ov_frame(10),
    "signed-node-record": b"\2" + ov_frame(15, b"\0" + ov_record(1, "peer", 0, v1, 0, 0, node_payload)),
    "signed-route-then-tombstone": b"\2" + ov_frame(15, b"\0" + ov_record(2, "peer/w1", 0, v1, 2_000_000_000, 0, route_payload))
        + ov_frame(15, b"\1" + ov_record(2, "peer/w1", 0, ov_version(1_000_000_001, 1, PEER), 0, 1, b"")),
    "garbage-signature": b"\0" + ov_frame(15, b"\0" + ov_record(1, "peer", 0, v1, 0, 0, node_payload, struct.pack("!H", 3) + b"abc" + b"\0" * 64)),
    "foreign-chain": b"\0" + ov_frame(15, b"\0" + ov_record(1, "peer", 0, v1, 0, 0, node_payload, struct.pack("!H", len(foreign_cert)) + foreign_cert + b"\7" * 64)),
    "foreign-origin-signed": b"\2" + ov_frame(15, b"\0" + ov_record(3, "shop/p", 0, ov_version(5, 0, OTHER), 0, 0, b"kind: AuthorizationPolicy\n", b"\xff" * 70)),
    "signed-revocation": b"\2" + ov_frame(15, b"\0" + ov_record(5, "other", OTHER, v1, 0, 0, b"\0" * 64)),
    "ids": b"\2" + ov_frame(16, struct.pack("!H", 2) + ov_id(1, "peer", v1) + ov_id(2, "peer/w1", v1)) + ov_frame(17, struct.pack("!H", 1) + ov_id(1, "peer", v1))
        + ov_frame(19, struct.pack("!H", 1) + ov_id(4, "b", ov_version(0, 0, 0))) + ov_frame(20, struct.pack("!H", 0)) + ov_frame(18),
    "views": b"\0" + ov_frame(4, ov_peer(OTHER, (bytes([10, 0, 0, 3]), 1)) + b"\3") + ov_frame(8, ov_peer(OTHER) + b"\2" + b"\2" + ov_peer(1, (bytes(15) + b"\1", 9)) + ov_peer(2))
        + ov_frame(9, b"\1" + ov_peer(3)) + ov_frame(3, b"\0") + ov_frame(5, ov_peer(PEER) + b"\1") + ov_frame(6, ov_peer(PEER) + b"\0")
        + ov_frame(11, ov_peer(OTHER)) + ov_frame(12, ov_peer(OTHER)) + ov_frame(13, ov_peer(OTHER)) + ov_frame(14, ov_peer(OTHER)) + ov_frame(7),
    "malformed-unknown-type": b"\0" + ov_frame(99),
    "malformed-trailing": b"\0" + ov_frame(10, b"x"),
    "malformed-bad-hello": b"\1" + ov_frame(1, ov_peer(PEER) + struct.pack("!H", 2)),
    "malformed-length": b"\0" + struct.pack("!I", (1 << 20) + 1) + b"\x0a",
}

comp = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: ledger\nspec:\n  type: state.beemesh\n  version: v1\n  metadata:\n  - name: consistency\n    value: strong\n"
component = {
    "strong": comp,
    "scoped-two-docs": comp + "scopes: [api, web]\n---\n" + comp.replace("ledger", "cache").replace("strong", "eventual") + "---\n",
    "flow-style": "{apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: s, namespace: shop, labels: {a: b}}, spec: {type: state.beemesh, version: v1, metadata: [{name: consistency, value: eventual}], initTimeout: 5s}}\n",
    "other-type": comp.replace("state.beemesh", "state.redis"),
    "bad-consistency": comp.replace("value: strong", "value: linear"),
    "secret-ref": comp.replace("value: strong", "secretKeyRef: {name: s, key: k}"),
    "alias-bomb": bomb + comp,
    "deep-nesting": comp + "scopes: " + "[" * 5000 + "]" * 5000 + "\n",
}

for target, seeds in {"packet": packet, "slirp-api": api, "policy-yaml": policy, "tunnel-frames": tunnel, "dns": dns,
                      "admin-api": admin, "workload-api": workload, "join-token": join, "gossip-records": gossip, "state-component": component}.items():
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
