package lvslab

import (
	"net/netip"
	"testing"
)

// TestDecapFamilies: IPIP and IPv6-in-IP decapsulation with every
// combination of outer and inner family (an IPVS tunnel's family may
// differ from the service's). A SYN to the VIP on lo, tunnelled from the
// client, gets a SYN-ACK from the VIP straight back.
func TestDecapFamilies(t *testing.T) {
	for _, tc := range []struct {
		name               string
		outerSrc, outerDst string
		innerSrc, innerVIP string
		outerProto         uint8
	}{
		{"4in4", "192.0.2.10", "192.0.2.21", "192.0.2.10", "203.0.113.100", protoIPIP},
		{"6in6", "2001:db8::10", "2001:db8::21", "2001:db8::10", "2001:db8:ff::100", protoIPv6},
		{"4in6", "2001:db8::10", "2001:db8::21", "192.0.2.10", "203.0.113.100", protoIPIP},
		{"6in4", "192.0.2.10", "192.0.2.21", "2001:db8::10", "2001:db8:ff::100", protoIPv6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, 50)
			lan := l.segment("lan")
			client := l.NewHost("client", HostConfig{})
			client.AddInterface(lan, "eth0", pfx("192.0.2.10/24"), pfx("2001:db8::10/64"))
			rs := l.NewHost("rs", HostConfig{Decap: true})
			rs.AddInterface(lan, "eth0", pfx("192.0.2.21/24"), pfx("2001:db8::21/64"))
			vipAddr := ip(tc.innerVIP)
			rs.Loopback().AddAddr(netip.PrefixFrom(vipAddr, vipAddr.BitLen()))
			// Replies to the client go out on eth0, whatever the VIP.
			rs.AddRoute(Route{Dst: pfx("192.0.2.0/24"), IfIndex: 2})
			if _, err := rs.ListenTCP(netip.AddrPortFrom(vipAddr, 80), nil); err != nil {
				t.Fatal(err)
			}

			src := ip(tc.innerSrc)
			syn := make([]byte, tcpHdrLen)
			put16(syn[0:], 40000)
			put16(syn[2:], 80)
			put32(syn[4:], 1000)
			syn[12] = byte(tcpHdrLen/4) << 4
			syn[13] = tcpSYN
			put16(syn[14:], 1024)
			put16(syn[16:], l4Checksum(src, vipAddr, protoTCP, syn))
			var inner []byte
			if src.Is4() {
				inner = make([]byte, ipv4HdrLen+len(syn))
				putIPv4Header(inner, len(inner), 7, true, 64, protoTCP, src, vipAddr)
				copy(inner[ipv4HdrLen:], syn)
			} else {
				inner = make([]byte, ipv6HdrLen+len(syn))
				putIPv6Header(inner, len(syn), protoTCP, 64, src, vipAddr)
				copy(inner[ipv6HdrLen:], syn)
			}
			if err := client.sendIP(ip(tc.outerSrc), ip(tc.outerDst), tc.outerProto, inner, false); err != nil {
				t.Fatal(err)
			}
			l.Drain()
			if rs.Counters().Decapsulated != 1 {
				t.Fatalf("rs %v", rs.Counters())
			}
			found := false
			for _, f := range l.frames("lan") {
				x := decode(f)
				if x.hasTCP && x.src == rs.Interface(2).MAC() && x.tcp.flags == tcpSYN|tcpACK {
					found = true
					if x.ip.src != vipAddr || x.ip.dst != src || x.ip.proto != protoTCP || x.tcp.ack != 1001 {
						t.Errorf("SYN-ACK %s", Summarize(f))
					}
				}
			}
			if !found {
				t.Error("no SYN-ACK from the VIP")
			}
			// The client has no such connection: it resets it.
			if client.Counters().Dropped(DropNoSocket) != 1 {
				t.Errorf("client %v", client.Counters())
			}
		})
	}
}
