package link

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golvs/internal/flow"
	"golvs/internal/header"
)

// frame builds an Ethernet frame with an IPv4 packet (no checksum needed
// for what the tests read: Decode checks only the IPv4 header's).
func frame4(src, dst string, proto uint8, sport, dport uint16, fragOff uint16) []byte {
	b := make([]byte, 14+20+20)
	binary.BigEndian.PutUint16(b[12:], header.EtherTypeIPv4)
	ip := header.IPv4(b[14:])
	ip.Encode(&header.IPv4Fields{TotalLength: 40, TTL: 64, Protocol: proto, FragmentOffset: fragOff,
		Src: netip.MustParseAddr(src).As4(), Dst: netip.MustParseAddr(dst).As4()})
	binary.BigEndian.PutUint16(b[34:], sport)
	binary.BigEndian.PutUint16(b[36:], dport)
	b[46] = 5 << 4 // TCP data offset
	binary.BigEndian.PutUint16(b[38:], 20)
	return b
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Filter
	}{
		{"no address", Filter{Services: []Match{{Proto: header.ProtoTCP, Port: 80}}}},
		{"icmp protocol", Filter{Services: []Match{{Addr: netip.MustParsePrefix("198.18.0.10/32"), Proto: header.ProtoICMPv4}}}},
		{"reversed range", Filter{Replies: []Match{{Addr: netip.MustParsePrefix("198.18.0.10/32"), Port: 90, PortLast: 80}}}},
		{"mapped prefix too wide", Filter{Services: []Match{{Addr: netip.MustParsePrefix("::ffff:0:0/90")}}}},
		{"invalid local", Filter{Local: []netip.Addr{{}}}},
	} {
		if _, err := tc.f.Compile(); err == nil {
			t.Errorf("%s: compiled", tc.name)
		}
	}
	// IPv4-mapped prefixes become IPv4 ones; host bits are cleared.
	c, err := (&Filter{Services: []Match{
		{Addr: netip.MustParsePrefix("::ffff:198.18.0.10/128"), Proto: header.ProtoTCP, Port: 80},
		{Addr: netip.MustParsePrefix("198.18.100.7/24")},
	}}).Compile()
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Filter().Services[0].Addr; got != netip.MustParsePrefix("198.18.0.10/32") {
		t.Errorf("mapped prefix normalized to %v", got)
	}
	if got := c.Filter().Services[1].Addr; got != netip.MustParsePrefix("198.18.100.0/24") {
		t.Errorf("prefix normalized to %v", got)
	}
}

// TestClassTaken: what reaches the data path, and what the ingress rule
// keeps from the host.
func TestClassTaken(t *testing.T) {
	c, err := (&Filter{
		Services: []Match{
			{Addr: netip.MustParsePrefix("198.18.0.10/32"), Proto: header.ProtoTCP, Port: 80},
			{Addr: netip.MustParsePrefix("198.18.100.0/24"), Port: 1000, PortLast: 2000},
			{Addr: netip.MustParsePrefix("198.18.0.11/32")},
		},
		Replies: []Match{{Addr: netip.MustParsePrefix("198.18.1.2/32"), Proto: header.ProtoTCP, Port: 8080}},
		Local:   []netip.Addr{netip.MustParseAddr("198.18.0.10"), netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.100.5")},
	}).Compile()
	if err != nil {
		t.Fatal(err)
	}
	tcp, udp, sctp := header.ProtoTCP, header.ProtoUDP, header.ProtoSCTP
	for _, tc := range []struct {
		name  string
		f     []byte
		class Class
		taken bool
	}{
		{"service", frame4("198.18.0.1", "198.18.0.10", tcp, 4000, 80, 0), ClassService, true},
		{"other port", frame4("198.18.0.1", "198.18.0.10", tcp, 4000, 81, 0), ClassNone, false},
		{"udp to a tcp service", frame4("198.18.0.1", "198.18.0.10", udp, 4000, 80, 0), ClassNone, false},
		{"mark class, local", frame4("198.18.0.1", "198.18.100.5", sctp, 4000, 1500, 0), ClassService, true},
		{"mark class, not local", frame4("198.18.0.1", "198.18.100.6", udp, 4000, 1500, 0), ClassService, false},
		{"port-0 service, any port", frame4("198.18.0.1", "198.18.0.11", udp, 4000, 9, 0), ClassService, true},
		{"port-0 service, later fragment", frame4("198.18.0.1", "198.18.0.11", tcp, 0, 0, 8), ClassService, true},
		{"port service, later fragment", frame4("198.18.0.1", "198.18.0.10", tcp, 0, 0, 8), ClassNone, false},
		{"nat reply", frame4("198.18.1.2", "198.18.0.1", tcp, 8080, 4000, 0), ClassReply, true},
		{"health check answer", frame4("198.18.1.2", "198.18.0.2", tcp, 8080, 4000, 0), ClassNone, false},
		{"gre to vip", frame4("198.18.0.1", "198.18.0.11", header.ProtoGRE, 0, 0, 0), ClassNone, false},
	} {
		var p flow.Parsed
		p.Decode(tc.f)
		if p.Reason != flow.ReasonNone {
			t.Fatalf("%s: frame does not decode: %v", tc.name, p.Reason)
		}
		if got := c.Class(&p); got != tc.class {
			t.Errorf("%s: Class %v, want %v", tc.name, got, tc.class)
		}
		if got := c.Taken(&p); got != tc.taken {
			t.Errorf("%s: Taken %v, want %v", tc.name, got, tc.taken)
		}
	}
}

// TestTakenAllocs: the re-injection decision allocates nothing.
func TestTakenAllocs(t *testing.T) {
	c, err := (&Filter{
		Services: []Match{{Addr: netip.MustParsePrefix("198.18.0.10/32"), Proto: header.ProtoTCP, Port: 80}},
		Replies:  []Match{{Addr: netip.MustParsePrefix("198.18.1.0/24")}},
		Local:    []netip.Addr{netip.MustParseAddr("198.18.0.10")},
	}).Compile()
	if err != nil {
		t.Fatal(err)
	}
	f := frame4("198.18.0.1", "198.18.0.10", header.ProtoTCP, 4000, 80, 0)
	var p flow.Parsed
	if a := testing.AllocsPerRun(100, func() {
		p.Decode(f)
		if !c.Taken(&p) || c.Class(&p) != ClassService {
			t.Fatal("not taken")
		}
	}); a != 0 {
		t.Errorf("%.1f allocations", a)
	}
}

// BenchmarkTaken is the decision Send makes on a ToHost frame: decode it
// and look it up (a few services and real servers).
func BenchmarkTaken(b *testing.B) {
	f := &Filter{Local: []netip.Addr{netip.MustParseAddr("198.18.0.10")}}
	for i := 0; i < 50; i++ {
		a := netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)})
		f.Services = append(f.Services, Match{Addr: netip.PrefixFrom(a, 32), Proto: header.ProtoTCP, Port: 80})
		f.Replies = append(f.Replies, Match{Addr: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), 32), Proto: header.ProtoTCP, Port: 8080})
	}
	c, err := f.Compile()
	if err != nil {
		b.Fatal(err)
	}
	fr := frame4("198.18.0.1", "198.18.0.10", header.ProtoTCP, 4000, 80, 0)
	var p flow.Parsed
	b.ReportAllocs()
	for b.Loop() {
		p.Decode(fr)
		if !c.Taken(&p) {
			b.Fatal("not taken")
		}
	}
}
