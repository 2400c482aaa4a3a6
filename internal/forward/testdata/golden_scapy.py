#!/usr/bin/python3
# Generates the golden frames of golden_test.go with Scapy (2.5.0, Debian
# python3-scapy), an implementation independent of this package: Scapy
# builds each expected output from scratch and computes every checksum
# itself. Run: /usr/bin/python3 testdata/golden_scapy.py
# and paste the layers it prints. It is not run by the tests.
from scapy.all import *

MAC_CLIENT, MAC_LB, MAC_RS = "02:00:5e:10:00:01", "02:00:5e:10:00:02", "02:00:5e:10:00:03"
ZERO = "00:00:00:00:00:00"
C4, V4, R4, L4 = "192.0.2.10", "198.51.100.1", "203.0.113.20", "203.0.113.1"
C6, V6, R6, L6 = "2001:db8::a", "2001:db8::1", "2001:db8:1::14", "2001:db8:1::1"
PAT = bytes(i % 256 for i in range(2000))  # payload pattern


def layers(p):
    out = []
    while p and not isinstance(p, NoPayload):
        whole = raw(p)
        rest = raw(p.payload) if not isinstance(p.payload, NoPayload) else b""
        out.append((p.name, whole[: len(whole) - len(rest)]))
        p = p.payload
    return out


def show(name, p, maxpayload=None):
    print("//", name)
    for lname, b in layers(p):
        if maxpayload is not None and lname == "Raw" and len(b) > maxpayload:
            print('\t"%s" + // %s (%d bytes, first %d shown)' % (b[:maxpayload].hex(), lname, len(b), maxpayload))
        else:
            print('\t"%s", // %s' % (b.hex(), lname))
    print()


def gue_sport(h):
    h = (h ^ (h << 16)) & 0xFFFFFFFF
    return ((h * (60999 - 32768)) >> 32) + 32768


# DNAT: TCP SYN to the VIP, to the real server's port 8080.
syn = TCP(sport=40000, dport=80, flags="S", seq=1000, window=64240, options=[("MSS", 1460)])
show("dnat in", Ether(dst=MAC_LB, src=MAC_CLIENT) / IP(src=C4, dst=V4, ttl=64, id=0x1234, flags="DF") / syn)
syn.dport = 8080
show("dnat out", Ether(dst=MAC_LB, src=MAC_CLIENT) / IP(src=C4, dst=R4, ttl=64, id=0x1234, flags="DF") / syn)

# DNAT of a UDP datagram without checksum: it leaves with one.
show("dnat udp0 in", Ether(dst=MAC_LB, src=MAC_CLIENT) / IP(src=C4, dst=V4, ttl=64, id=7) / UDP(sport=40002, dport=53, chksum=0) / Raw(b"query"))
show("dnat udp0 out", Ether(dst=MAC_LB, src=MAC_CLIENT) / IP(src=C4, dst=R4, ttl=64, id=7) / UDP(sport=40002, dport=5353) / Raw(b"query"))

# SNAT: an IPv6 UDP reply from the real server, source back to the VIP.
show("snat in", Ether(dst=MAC_LB, src=MAC_RS) / IPv6(src=R6, dst=C6, hlim=64) / UDP(sport=5353, dport=40001) / Raw(b"reply"))
show("snat out", Ether(dst=MAC_LB, src=MAC_RS) / IPv6(src=V6, dst=C6, hlim=64) / UDP(sport=53, dport=40001) / Raw(b"reply"))

# DR: tagged frame in, untagged to the real server's MAC, TTL 64 -> 63.
ack = TCP(sport=40000, dport=80, flags="A", seq=1001, ack=5001, window=502)
show("dr in", Ether(dst=MAC_LB, src=MAC_CLIENT) / Dot1Q(vlan=100, prio=5) / IP(src=C4, dst=V4, ttl=64, id=0x2222, flags="DF") / ack)
show("dr out", Ether(dst=MAC_RS, src=MAC_LB) / IP(src=C4, dst=V4, ttl=63, id=0x2222, flags="DF") / ack)

# SetMACsVLAN: an untagged IPv6 frame gets a tag (VID 42, PCP 0).
show("vlan out", Ether(dst=MAC_RS, src=MAC_LB) / Dot1Q(vlan=42) / IPv6(src=C6, dst=V6, hlim=63) / ICMPv6EchoRequest(id=1, seq=1))

# TUN IPIP (IPv4 in IPv4): DSCP EF (46) with CE inner -> ECT(0) outside, DF copied.
inner = IP(src=C4, dst=V4, ttl=63, tos=0xBB, id=0x3333, flags="DF") / TCP(sport=40000, dport=80, flags="PA", seq=1, ack=1, window=502) / Raw(b"GET / HTTP/1.0\r\n\r\n")
show("ipip in", Ether(dst=MAC_LB, src=MAC_CLIENT) / inner)
show("ipip out", Ether(dst=ZERO, src=ZERO) / IP(src=L4, dst=R4, ttl=63, tos=0xBA, id=0x0101, flags="DF", proto=4) / inner)

# TUN GUE with checksum, IPv6 outer, IPv6 inner (proto_ctype 41), flow hash 0x12345678.
inner6 = IPv6(src=C6, dst=V6, hlim=63, tc=0x28) / UDP(sport=40001, dport=53) / Raw(b"query")
show("gue in", Ether(dst=MAC_LB, src=MAC_CLIENT) / inner6)
show("gue out", Ether(dst=ZERO, src=ZERO, type=0x86DD) / IPv6(src=L6, dst=R6, hlim=63, tc=0x28, nh=17) / UDP(sport=gue_sport(0x12345678), dport=6080) / Raw(bytes([0, 41, 0, 0])) / inner6)

# TUN GRE with checksum, IPv4 outer, IPv4 inner without DF.
inner4 = IP(src=C4, dst=V4, ttl=63, id=0x4444) / UDP(sport=40002, dport=53) / Raw(b"query")
show("gre in", Ether(dst=MAC_LB, src=MAC_CLIENT) / inner4)
show("gre out", Ether(dst=ZERO, src=ZERO) / IP(src=L4, dst=R4, ttl=63, id=0x0202, proto=47) / GRE(chksum_present=1, proto=0x0800) / inner4)

# ICMPError FragNeeded: a 600-byte DF packet (TOS 0x10) to the VIP, MTU 576 -> 548 quoted.
big = IP(src=C4, dst=V4, ttl=63, tos=0x10, id=0x5555, flags="DF") / TCP(sport=40000, dport=80, flags="A", seq=1, ack=1, window=502) / Raw(PAT[:560])
show("fragneeded in", Ether(dst=MAC_LB, src=MAC_CLIENT) / big, 16)
show("fragneeded out", Ether(dst=ZERO, src=ZERO) / IP(src=V4, dst=C4, ttl=64, tos=0xD0, id=0x4242, proto=1) / ICMP(type=3, code=4, nexthopmtu=1400) / Raw(raw(big)[:548]), 16)

# ICMPError PortUnreachable, IPv6: a UDP query to a VIP without real servers.
q6 = IPv6(src=C6, dst=V6, hlim=64) / UDP(sport=40001, dport=53) / Raw(b"query")
show("unreach6 in", Ether(dst=MAC_LB, src=MAC_CLIENT) / q6)
show("unreach6 out", Ether(dst=ZERO, src=ZERO, type=0x86DD) / IPv6(src=V6, dst=C6, hlim=64) / ICMPv6DestUnreach(code=4) / Raw(raw(q6)))

# NATICMPIn: a router reports port unreachable about a UDP reply that
# left the director from VIP:53; the error goes on to the real server.
reply = IP(src=V4, dst=C4, ttl=62, id=0x6666) / UDP(sport=53, dport=40002) / Raw(b"answer")
rq = raw(reply)[:28 + 4]  # IP header, UDP header, 4 payload bytes
show("icmpin in", Ether(dst=MAC_LB, src=MAC_CLIENT) / IP(src="192.0.2.254", dst=V4, ttl=63, id=0x7777) / ICMP(type=3, code=3) / Raw(rq))
q = IP(rq[:20]); q.src = R4; del q.chksum
fixed = raw(q)[:20] + (5353).to_bytes(2, "big") + rq[22:]  # UDP checksum left as it was
show("icmpin out", Ether(dst=MAC_LB, src=MAC_CLIENT) / IP(src="192.0.2.254", dst=R4, ttl=63, id=0x7777) / ICMP(type=3, code=3) / Raw(fixed))

# NATICMPOut, IPv6: the real server reports hop limit exceeded... about
# a request it got (client -> RS:8080), sent towards the client.
req = IPv6(src=C6, dst=R6, hlim=1) / TCP(sport=40000, dport=8080, flags="S", seq=7)
show("icmpout in", Ether(dst=MAC_LB, src=MAC_RS) / IPv6(src=R6, dst=C6, hlim=64) / ICMPv6TimeExceeded() / Raw(raw(req)))
rq6 = raw(req)
fixed6 = rq6[:24] + bytes(IPv6(dst=V6))[24:40] + rq6[40:42] + (80).to_bytes(2, "big") + rq6[44:]
show("icmpout out", Ether(dst=MAC_LB, src=MAC_RS) / IPv6(src=V6, dst=C6, hlim=64) / ICMPv6TimeExceeded() / Raw(fixed6))
