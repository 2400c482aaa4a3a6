package forward

import (
	"testing"

	"golvs/internal/flow"
	"golvs/internal/header"
)

// TestAllocs proves that every function allocates nothing (style.md
// §4.2). Each run restores the frame first (copy does not allocate).
func TestAllocs(t *testing.T) {
	tcp := (&pkt{vlan: 7, proto: header.ProtoTCP, src: client4, dst: vip4, sport: 40000, dport: 80, ttl: 64, df: true, payload: make([]byte, 100)}).frame()
	udp6 := (&pkt{v6: true, ext: true, proto: header.ProtoUDP, udpZero: true, src: client6, dst: vip6, sport: 1, dport: 53, ttl: 64, payload: make([]byte, 100)}).frame()
	sctp := (&pkt{proto: header.ProtoSCTP, src: client4, dst: vip4, sport: 1, dport: 2, ttl: 64, payload: make([]byte, 100)}).frame()
	q := &pkt{proto: header.ProtoUDP, src: vip4, dst: client4, sport: 53, dport: 40000, ttl: 64, payload: []byte("answer")}
	icmp := icmpAbout(q, lb4, vip4, q.ip()).frame()
	gue := &Tunnel{Src: lb6, Dst: rs6, Type: TunnelGUE, Port: 6080, Csum: true}
	gre := &Tunnel{Src: lb4, Dst: rs4, Type: TunnelGRE, Csum: true}

	tests := []struct {
		name  string
		frame []byte
		do    func(b *Buf, p *flow.Parsed) Result
	}{
		{"DNAT", tcp, func(b *Buf, p *flow.Parsed) Result { return DNAT(b, p, rs4, 8080, false) }},
		{"DNAT UDP full checksum", udp6, func(b *Buf, p *flow.Parsed) Result { return DNAT(b, p, rs6, 8080, false) }},
		{"SNAT SCTP", sctp, func(b *Buf, p *flow.Parsed) Result { return SNAT(b, p, vip4, 80, false) }},
		{"SNAT partial", tcp, func(b *Buf, p *flow.Parsed) Result { return SNAT(b, p, vip4, 80, true) }},
		{"CompleteChecksum", udp6, CompleteChecksum},
		{"DecTTL", udp6, DecTTL},
		{"DR", tcp, func(b *Buf, p *flow.Parsed) Result { return DR(b, p, macRS, macLB) }},
		{"SetMACsVLAN", udp6, func(b *Buf, _ *flow.Parsed) Result { return SetMACsVLAN(b, macRS, macLB, 9) }},
		{"Encap IPIP", tcp, func(b *Buf, p *flow.Parsed) Result { return Encap(b, p, &Tunnel{Src: lb4, Dst: rs4}, 1, 2) }},
		{"Encap GUE", udp6, func(b *Buf, p *flow.Parsed) Result { return Encap(b, p, gue, 1, 2) }},
		{"Encap GRE", tcp, func(b *Buf, p *flow.Parsed) Result { return Encap(b, p, gre, 1, 2) }},
		{"ICMPError v4", tcp, func(b *Buf, p *flow.Parsed) Result { return ICMPError(b, p, FragNeeded, 1400, vip4, 1) }},
		{"ICMPError v6", udp6, func(b *Buf, p *flow.Parsed) Result { return ICMPError(b, p, PortUnreachable, 0, vip6, 1) }},
		{"NATICMPIn", icmp, func(b *Buf, p *flow.Parsed) Result { return NATICMPIn(b, p, rs4, 5353) }},
		{"NATICMPOut", icmp, func(b *Buf, p *flow.Parsed) Result { return NATICMPOut(b, p, vip4, 53) }},
		{"CheckMTU", tcp, func(_ *Buf, p *flow.Parsed) Result {
			if v, _ := CheckMTU(p, 1500, gue); v != MTUFits {
				return Malformed
			}
			return Done
		}},
	}
	frags := make([]Buf, 4)
	for i := range frags {
		frags[i].B = make([]byte, 600)
	}
	tests = append(tests, struct {
		name  string
		frame []byte
		do    func(b *Buf, p *flow.Parsed) Result
	}{"FragmentIPv4", tcp, func(b *Buf, _ *flow.Parsed) Result {
		n, r := FragmentIPv4(b, 68, frags)
		if n != 3 {
			return Malformed
		}
		return r
	}})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(tc.frame)
			b := load(tc.frame)
			var r Result
			n := testing.AllocsPerRun(100, func() {
				copy(b.B, b.before)
				b.Off, b.Len = Headroom, len(tc.frame)
				r = tc.do(&b.Buf, p)
			})
			if r != Done {
				t.Fatalf("result %v", r)
			}
			if n != 0 {
				t.Fatalf("%v allocations per run, want 0", n)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	for r := range NumResults + 1 {
		if r.String() == "" || (r < NumResults && r.String() == "unknown") {
			t.Errorf("Result %d has no name", r)
		}
	}
	for v := range NumMTUVerdicts + 1 {
		if v.String() == "" || (v < NumMTUVerdicts && v.String() == "unknown") {
			t.Errorf("MTUVerdict %d has no name", v)
		}
	}
}
