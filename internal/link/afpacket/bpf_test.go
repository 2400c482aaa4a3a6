package afpacket

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"

	"golvs/internal/flow"
	"golvs/internal/header"
	"golvs/internal/link"
)

// testFilter is a director with TCP and UDP services on two VIPs, a
// port-0 service, a firewall-mark class (a network and a port range), an
// IPv6 service, and NAT real servers.
func testFilter() *link.Filter {
	return &link.Filter{
		Services: []link.Match{
			{Addr: netip.MustParsePrefix("198.18.0.10/32"), Proto: header.ProtoTCP, Port: 80},
			{Addr: netip.MustParsePrefix("198.18.0.10/32"), Proto: header.ProtoUDP, Port: 53},
			{Addr: netip.MustParsePrefix("198.18.0.11/32"), Proto: header.ProtoTCP},
			{Addr: netip.MustParsePrefix("198.18.100.0/24"), Port: 1000, PortLast: 2000},
			{Addr: netip.MustParsePrefix("2001:db8::10/128"), Proto: header.ProtoTCP, Port: 443},
			{Addr: netip.MustParsePrefix("2001:db8::10/128"), Proto: header.ProtoSCTP, Port: 9},
		},
		Replies: []link.Match{
			{Addr: netip.MustParsePrefix("198.18.1.2/32"), Proto: header.ProtoTCP, Port: 8080},
			{Addr: netip.MustParsePrefix("198.18.1.3/32")},
			{Addr: netip.MustParsePrefix("2001:db8:1::2/128"), Proto: header.ProtoUDP, Port: 53},
		},
		Local:      []netip.Addr{mustAddr("198.18.0.2"), mustAddr("198.18.0.10"), mustAddr("198.18.0.11"), mustAddr("2001:db8::10"), mustAddr("2001:db8::2")},
		ICMPErrors: true,
	}
}

var (
	pool4 = []string{"198.18.0.10", "198.18.0.11", "198.18.100.7", "198.18.1.2", "198.18.1.3", "198.18.0.2", "198.18.5.5", "198.18.0.1", "198.18.101.1"}
	pool6 = []string{"2001:db8::10", "2001:db8:1::2", "2001:db8::2", "2001:db8::99", "2001:db8:5::5"}
	ports = []uint16{80, 53, 443, 9, 8080, 999, 1000, 1500, 2000, 2001, 33000, 0, 65535}
)

// randPkt returns a random well-formed packet over the test pools.
func randPkt(r *rand.Rand, depth int) *pkt {
	is4 := r.IntN(3) != 0
	pick := func() netip.Addr {
		if is4 {
			return mustAddr(pool4[r.IntN(len(pool4))])
		}
		return mustAddr(pool6[r.IntN(len(pool6))])
	}
	p := &pkt{src: pick(), dst: pick(), sport: ports[r.IntN(len(ports))], dport: ports[r.IntN(len(ports))]}
	protos := []uint8{header.ProtoTCP, header.ProtoUDP, header.ProtoSCTP, header.ProtoGRE}
	if is4 {
		protos = append(protos, header.ProtoICMPv4, header.ProtoICMPv4)
	} else {
		protos = append(protos, header.ProtoICMPv6, header.ProtoICMPv6)
	}
	p.proto = protos[r.IntN(len(protos))]
	p.payload = make([]byte, r.IntN(40))
	if is4 {
		if r.IntN(6) == 0 {
			p.ipOpts = 4 * (1 + r.IntN(3))
		}
		switch r.IntN(8) {
		case 0:
			p.mf = true // first fragment
		case 1:
			p.fragOff, p.mf = 8*uint16(1+r.IntN(100)), r.IntN(2) == 0
		}
	} else if r.IntN(4) == 0 {
		exts := []uint8{header.ProtoHopByHop, header.ProtoDestOpts, header.ProtoRouting, header.ProtoFragment}
		p.ext = []uint8{exts[r.IntN(len(exts))]}
		if p.ext[0] == header.ProtoFragment && r.IntN(2) == 0 {
			p.fragOff, p.mf = 8*uint16(1+r.IntN(100)), true
		}
	}
	if p.proto == header.ProtoICMPv4 || p.proto == header.ProtoICMPv6 {
		types := []uint8{0, 8, 3, 4, 5, 11, 12}
		if !is4 {
			types = []uint8{1, 2, 3, 4, 128, 129, 135}
		}
		p.icmpType = types[r.IntN(len(types))]
		if depth == 0 && (is4 && p.icmpType != 0 && p.icmpType != 8 || !is4 && p.icmpType < 128) {
			for {
				q := randPkt(r, 1)
				if q.is4() == is4 {
					p.quoted = q
					break
				}
			}
		}
	}
	return p
}

var (
	macA = [6]byte{0x02, 0, 0, 0, 0, 0xa}
	macB = [6]byte{0x02, 0, 0, 0, 0, 0xb}
)

func newVM(t *testing.T, prog []bpf.RawInstruction) *bpf.VM {
	t.Helper()
	ins, ok := bpf.Disassemble(prog)
	if !ok {
		t.Fatalf("program does not disassemble")
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	return vm
}

// extHeaderSuperset reports the one case where the kernel filter passes
// more than Class: an IPv6 packet whose next header is an extension
// header, to a Services address or from a Replies address (to a non-local
// one).
func extHeaderSuperset(c *link.Compiled, p *flow.Parsed, frame []byte) bool {
	if p.Tuple.Family != flow.FamilyIPv6 {
		return false
	}
	switch frame[offV6Next] {
	case header.ProtoHopByHop, header.ProtoRouting, header.ProtoFragment, header.ProtoDestOpts:
	default:
		return false
	}
	f := c.Filter()
	for _, m := range f.Services {
		if m.Addr.Contains(p.Tuple.DstAddr()) {
			return true
		}
	}
	for _, m := range f.Replies {
		if m.Addr.Contains(p.Tuple.SrcAddr()) && !c.IsLocal(p.Tuple.DstAddr()) {
			return true
		}
	}
	return false
}

// TestFilterProgramMatchesClass runs the socket filter in x/net/bpf's VM
// over random well-formed frames and checks it against link.Compiled.Class,
// the specification: equal, but for the documented IPv6 extension-header
// superset.
func TestFilterProgramMatchesClass(t *testing.T) {
	c, err := testFilter().Compile()
	if err != nil {
		t.Fatal(err)
	}
	prog, err := filterProgram(c, filterOptions{noAncillary: true})
	if err != nil {
		t.Fatal(err)
	}
	vm := newVM(t, prog)
	r := rand.New(rand.NewPCG(1, 2))
	var p flow.Parsed
	counts := map[link.Class]int{}
	superset := 0
	for i := 0; i < 20000; i++ {
		pk := randPkt(r, 0)
		frame := pad(pk.frame(macB, macA))
		p.Decode(frame)
		if p.Reason != flow.ReasonNone {
			t.Fatalf("test frame %d does not decode (%v): %x", i, p.Reason, frame)
		}
		want := c.Class(&p)
		got, err := vm.Run(frame)
		if err != nil {
			t.Fatal(err)
		}
		counts[want]++
		switch {
		case want != link.ClassNone && got == 0:
			t.Fatalf("frame %d (%v %+v) is %v but the filter drops it: %x", i, p.Tuple, pk, want, frame)
		case want == link.ClassNone && got != 0:
			if !extHeaderSuperset(c, &p, frame) {
				t.Fatalf("frame %d (%v, icmp %d) is not for the data path but the filter passes it: %x", i, p.Tuple, p.ICMPType, frame)
			}
			superset++
		case got != 0 && got != acceptAll:
			t.Fatalf("filter keeps %d bytes, want all", got)
		}
	}
	t.Logf("classes %v, extension-header superset %d", counts, superset)
	for _, cl := range []link.Class{link.ClassNone, link.ClassService, link.ClassReply, link.ClassICMP} {
		if counts[cl] < 100 {
			t.Errorf("only %d frames of class %v: the generator does not cover it", counts[cl], cl)
		}
	}
}

// TestFilterProgramCases checks named frames, each against the expected
// verdict.
func TestFilterProgramCases(t *testing.T) {
	c, err := testFilter().Compile()
	if err != nil {
		t.Fatal(err)
	}
	prog, err := filterProgram(c, filterOptions{noAncillary: true})
	if err != nil {
		t.Fatal(err)
	}
	vm := newVM(t, prog)
	client, client6 := mustAddr("198.18.0.1"), mustAddr("2001:db8::1")
	vip, vip6 := mustAddr("198.18.0.10"), mustAddr("2001:db8::10")
	rs, rs6 := mustAddr("198.18.1.2"), mustAddr("2001:db8:1::2")
	tcp, udp := header.ProtoTCP, header.ProtoUDP
	req := &pkt{src: client, dst: vip, proto: tcp, sport: 40000, dport: 80}
	tests := []struct {
		name string
		p    *pkt
		pass bool
	}{
		{"tcp to vip:80", req, true},
		{"tcp to vip:81", &pkt{src: client, dst: vip, proto: tcp, sport: 40000, dport: 81}, false},
		{"udp to vip:80", &pkt{src: client, dst: vip, proto: udp, sport: 40000, dport: 80}, false},
		{"udp to vip:53", &pkt{src: client, dst: vip, proto: udp, sport: 40000, dport: 53}, true},
		{"first fragment to vip:53", &pkt{src: client, dst: vip, proto: udp, sport: 1, dport: 53, mf: true}, true},
		{"later fragment to vip", &pkt{src: client, dst: vip, proto: udp, fragOff: 8, payload: make([]byte, 16)}, false},
		{"later fragment to port-0 service", &pkt{src: client, dst: mustAddr("198.18.0.11"), proto: tcp, fragOff: 8, payload: make([]byte, 16)}, true},
		{"ip options", &pkt{src: client, dst: vip, proto: tcp, sport: 1, dport: 80, ipOpts: 8}, true},
		{"mark class, port range", &pkt{src: client, dst: mustAddr("198.18.100.200"), proto: header.ProtoSCTP, sport: 1, dport: 2000}, true},
		{"mark class, out of range", &pkt{src: client, dst: mustAddr("198.18.100.200"), proto: udp, sport: 1, dport: 2001}, false},
		{"nat reply", &pkt{src: rs, dst: client, proto: tcp, sport: 8080, dport: 40000}, true},
		{"health check answer to the director", &pkt{src: rs, dst: mustAddr("198.18.0.2"), proto: tcp, sport: 8080, dport: 40000}, false},
		{"rs other port", &pkt{src: rs, dst: client, proto: tcp, sport: 22, dport: 40000}, false},
		{"icmp echo to vip", &pkt{src: client, dst: vip, proto: header.ProtoICMPv4, icmpType: 8}, false},
		{"icmp error about vip's packet", &pkt{src: mustAddr("198.18.9.9"), dst: vip, proto: header.ProtoICMPv4, icmpType: 3, icmpCode: 4,
			quoted: &pkt{src: vip, dst: client, proto: tcp, sport: 80, dport: 40000}}, true},
		{"icmp error about a packet to rs", &pkt{src: mustAddr("198.18.9.9"), dst: client, proto: header.ProtoICMPv4, icmpType: 11,
			quoted: &pkt{src: client, dst: rs, proto: tcp, sport: 40000, dport: 8080}}, true},
		{"icmp redirect", &pkt{src: mustAddr("198.18.9.9"), dst: vip, proto: header.ProtoICMPv4, icmpType: 5,
			quoted: &pkt{src: vip, dst: client, proto: tcp, sport: 80, dport: 40000}}, false},
		{"icmp error about others", &pkt{src: mustAddr("198.18.9.9"), dst: mustAddr("198.18.0.2"), proto: header.ProtoICMPv4, icmpType: 3,
			quoted: &pkt{src: mustAddr("198.18.0.2"), dst: client, proto: udp, sport: 5, dport: 6}}, false},
		{"v6 tcp to vip6:443", &pkt{src: client6, dst: vip6, proto: tcp, sport: 1, dport: 443}, true},
		{"v6 tcp to vip6:80", &pkt{src: client6, dst: vip6, proto: tcp, sport: 1, dport: 80}, false},
		{"v6 reply", &pkt{src: rs6, dst: client6, proto: udp, sport: 53, dport: 1}, true},
		{"v6 with dest options to vip6", &pkt{src: client6, dst: vip6, proto: tcp, sport: 1, dport: 443, ext: []uint8{header.ProtoDestOpts}}, true},
		{"v6 icmp error", &pkt{src: client6, dst: vip6, proto: header.ProtoICMPv6, icmpType: 2,
			quoted: &pkt{src: vip6, dst: client6, proto: tcp, sport: 443, dport: 1}}, true},
		{"v6 echo", &pkt{src: client6, dst: vip6, proto: header.ProtoICMPv6, icmpType: 128}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := pad(tt.p.frame(macB, macA))
			got, err := vm.Run(frame)
			if err != nil {
				t.Fatal(err)
			}
			if (got != 0) != tt.pass {
				t.Errorf("filter verdict %d, want pass=%v", got, tt.pass)
			}
			var p flow.Parsed
			p.Decode(frame)
			if (c.Class(&p) != link.ClassNone) != tt.pass {
				t.Errorf("Class = %v, want pass=%v", c.Class(&p), tt.pass)
			}
		})
	}
	// Not IP at all.
	arp := make([]byte, 60)
	arp[12], arp[13] = 0x08, 0x06
	if got, _ := vm.Run(arp); got != 0 {
		t.Errorf("ARP passes")
	}
}

// TestFilterProgramEmpty: a filter with no matches passes nothing.
func TestFilterProgramEmpty(t *testing.T) {
	c, err := (&link.Filter{ICMPErrors: true}).Compile()
	if err != nil {
		t.Fatal(err)
	}
	prog, err := filterProgram(c, filterOptions{noAncillary: true})
	if err != nil {
		t.Fatal(err)
	}
	vm := newVM(t, prog)
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		if got, _ := vm.Run(pad(randPkt(r, 0).frame(macB, macA))); got != 0 {
			t.Fatalf("empty filter passes a frame")
		}
	}
}

// TestFilterProgramMalformed: garbage never crashes the program and never
// makes it miss a frame Class takes (the kernel would run it on anything).
func TestFilterProgramMalformed(t *testing.T) {
	c, err := testFilter().Compile()
	if err != nil {
		t.Fatal(err)
	}
	prog, err := filterProgram(c, filterOptions{noAncillary: true})
	if err != nil {
		t.Fatal(err)
	}
	vm := newVM(t, prog)
	fprog, err := fanoutProgram(c, false)
	if err != nil {
		t.Fatal(err)
	}
	fvm := newVM(t, fprog)
	r := rand.New(rand.NewPCG(5, 6))
	var p flow.Parsed
	for i := 0; i < 20000; i++ {
		frame := pad(randPkt(r, 0).frame(macB, macA))
		// Truncate or flip bytes.
		switch r.IntN(3) {
		case 0:
			frame = frame[:r.IntN(len(frame)+1)]
		case 1:
			frame[r.IntN(len(frame))] ^= byte(1 << r.IntN(8))
		}
		got, err := vm.Run(frame)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fvm.Run(frame); err != nil {
			t.Fatal(err)
		}
		p.Decode(frame)
		if c.Class(&p) != link.ClassNone && got == 0 {
			t.Fatalf("frame is %v but the filter drops it: %x", c.Class(&p), frame)
		}
	}
}

// TestFilterProgramLarge: many services make long programs; the far
// conditional jumps are laid out long and the verdicts stay right.
func TestFilterProgramLarge(t *testing.T) {
	f := &link.Filter{ICMPErrors: true}
	for i := 0; i < 200; i++ {
		a := netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		f.Services = append(f.Services, link.Match{Addr: netip.PrefixFrom(a, 32), Proto: header.ProtoTCP, Port: 80})
		f.Replies = append(f.Replies, link.Match{Addr: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 50, byte(i)}), 32), Proto: header.ProtoTCP, Port: 8080})
	}
	f.Services = append(f.Services, link.Match{Addr: netip.MustParsePrefix("2001:db8::10/128"), Proto: header.ProtoTCP, Port: 443})
	c, err := f.Compile()
	if err != nil {
		t.Fatal(err)
	}
	prog, err := filterProgram(c, filterOptions{noAncillary: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d instructions", len(prog))
	vm := newVM(t, prog)
	client := mustAddr("198.18.0.1")
	for _, tt := range []struct {
		p    *pkt
		pass bool
	}{
		{&pkt{src: client, dst: mustAddr("198.19.0.143"), proto: header.ProtoTCP, sport: 1, dport: 80}, true},
		{&pkt{src: client, dst: mustAddr("198.19.0.143"), proto: header.ProtoTCP, sport: 1, dport: 81}, false},
		{&pkt{src: client, dst: mustAddr("198.19.0.200"), proto: header.ProtoTCP, sport: 1, dport: 80}, false},
		{&pkt{src: mustAddr("198.18.50.7"), dst: client, proto: header.ProtoTCP, sport: 8080, dport: 1}, true},
		{&pkt{src: mustAddr("2001:db8::1"), dst: mustAddr("2001:db8::10"), proto: header.ProtoTCP, sport: 1, dport: 443}, true},
		{&pkt{src: mustAddr("2001:db8::1"), dst: mustAddr("2001:db8::11"), proto: header.ProtoTCP, sport: 1, dport: 443}, false},
	} {
		got, _ := vm.Run(pad(tt.p.frame(macB, macA)))
		if (got != 0) != tt.pass {
			t.Errorf("%v -> %v: verdict %d, want pass=%v", tt.p.src, tt.p.dst, got, tt.pass)
		}
	}
	// Too many matches for the kernel's limit: addresses only.
	for i := 0; i < 1000; i++ {
		a := netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		for port := uint16(1); port <= 4; port++ {
			f.Services = append(f.Services, link.Match{Addr: netip.PrefixFrom(a, 32), Proto: header.ProtoTCP, Port: 8000 + port})
		}
	}
	c, err = f.Compile()
	if err != nil {
		t.Fatal(err)
	}
	prog, coarse, err := FilterProgram(c)
	if err != nil || !coarse {
		t.Fatalf("FilterProgram: coarse %v, err %v; want the coarse program", coarse, err)
	}
	t.Logf("coarse: %d instructions", len(prog))
	// Far too many: an error.
	for i := 0; i < 5000; i++ {
		a := netip.AddrFrom4([4]byte{198, 20, byte(i >> 8), byte(i)})
		f.Services = append(f.Services, link.Match{Addr: netip.PrefixFrom(a, 32), Proto: header.ProtoTCP, Port: 80})
	}
	c, err = f.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := FilterProgram(c); err == nil {
		t.Errorf("a program over the kernel's limit assembled")
	}
}

// TestFanoutProgramClient checks that the fanout hash is a function of
// the client: a request to a VIP, the NAT reply from the real server, and
// ICMP errors about either direction hash alike, while different clients
// spread over queues.
func TestFanoutProgramClient(t *testing.T) {
	c, err := testFilter().Compile()
	if err != nil {
		t.Fatal(err)
	}
	prog, err := fanoutProgram(c, false)
	if err != nil {
		t.Fatal(err)
	}
	vm := newVM(t, prog)
	run := func(p *pkt) uint32 {
		t.Helper()
		v, err := vm.Run(pad(p.frame(macB, macA)))
		if err != nil {
			t.Fatal(err)
		}
		return uint32(v)
	}
	r := rand.New(rand.NewPCG(7, 8))
	router := mustAddr("198.18.9.9")
	queues := [4]int{}
	for i := 0; i < 2000; i++ {
		is4 := i%3 != 0
		var client, vip, rs netip.Addr
		var vport, rport uint16
		proto := header.ProtoTCP
		if is4 {
			client = netip.AddrFrom4([4]byte{198, 18, byte(200 + r.IntN(50)), byte(r.IntN(256))})
			vip, vport, rs, rport = mustAddr("198.18.0.10"), 80, mustAddr("198.18.1.2"), 8080
		} else {
			b := mustAddr("2001:db8:77::").As16()
			b[14], b[15] = byte(r.IntN(256)), byte(r.IntN(256))
			client = netip.AddrFrom16(b)
			vip, vport, rs, rport, proto = mustAddr("2001:db8::10"), 443, mustAddr("2001:db8:1::2"), 53, header.ProtoUDP
		}
		cport := uint16(1024 + r.IntN(60000))
		request := &pkt{src: client, dst: vip, proto: proto, sport: cport, dport: vport}
		forwarded := &pkt{src: client, dst: rs, proto: proto, sport: cport, dport: rport}
		reply := &pkt{src: rs, dst: client, proto: proto, sport: rport, dport: cport}
		replied := &pkt{src: vip, dst: client, proto: proto, sport: vport, dport: cport}
		icmp := header.ProtoICMPv4
		typ := uint8(3)
		r6 := router
		if !is4 {
			icmp, typ, r6 = header.ProtoICMPv6, 1, mustAddr("2001:db8:9::9")
		}
		// An error about the director's reply to the client, sent to
		// the VIP; an error about the forwarded request, sent to the
		// client through the director.
		errIn := &pkt{src: r6, dst: vip, proto: icmp, icmpType: typ, quoted: replied}
		errOut := &pkt{src: r6, dst: client, proto: icmp, icmpType: typ, quoted: forwarded}
		h := run(request)
		for name, p := range map[string]*pkt{"reply": reply, "error in": errIn, "error out": errOut} {
			if got := run(p); got != h {
				t.Fatalf("client %v:%d: %s hashes to %#x, the request to %#x", client, cport, name, got, h)
			}
		}
		queues[h%4]++
	}
	t.Logf("spread over 4 queues: %v", queues)
	for q, n := range queues {
		if n < 2000/4/2 {
			t.Errorf("queue %d got %d of 2000 clients", q, n)
		}
	}
	// Fragments that are not first hash on the address alone, and differ
	// from their first fragment only by the port.
	frag := &pkt{src: mustAddr("198.18.200.1"), dst: mustAddr("198.18.0.10"), proto: header.ProtoUDP, fragOff: 64, payload: make([]byte, 8)}
	if got, want := run(frag), hashOf(0xc612c801, 0); got != want {
		t.Errorf("non-first fragment: hash %#x, want %#x", got, want)
	}
	// Not service traffic: queue 0.
	if got := run(&pkt{src: mustAddr("198.18.5.5"), dst: mustAddr("198.18.0.2"), proto: header.ProtoTCP, sport: 22, dport: 5}); got != 0 {
		t.Errorf("other traffic hashes to %#x, want 0", got)
	}
}

// hashOf is the fanout program's hash of a folded address and port.
func hashOf(addr uint32, port uint16) uint32 { return ((addr ^ uint32(port)) * hashMul) >> 16 }
