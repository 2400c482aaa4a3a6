package forward

import (
	"net/netip"
	"testing"

	"golvs/internal/flow"
	"golvs/internal/header"
)

// fuzzSeeds are valid frames of every kind the functions handle.
func fuzzSeeds() [][]byte {
	q := &pkt{proto: header.ProtoUDP, src: vip4, dst: client4, sport: 53, dport: 40000, ttl: 64, payload: []byte("answer")}
	q6 := &pkt{v6: true, ext: true, proto: header.ProtoTCP, src: vip6, dst: client6, sport: 80, dport: 40000, ttl: 64}
	return [][]byte{
		(&pkt{proto: header.ProtoTCP, src: client4, dst: vip4, sport: 40000, dport: 80, ttl: 64, df: true, payload: []byte("GET /")}).frame(),
		(&pkt{v6: true, ext: true, vlan: 5, proto: header.ProtoUDP, src: client6, dst: vip6, sport: 1, dport: 53, ttl: 2, payload: []byte("q")}).frame(),
		(&pkt{proto: header.ProtoUDP, udpZero: true, src: client4, dst: vip4, sport: 1, dport: 53, ttl: 9, pad: 10}).frame(),
		(&pkt{proto: header.ProtoSCTP, src: client4, dst: vip4, sport: 5000, dport: 80, ttl: 64, payload: []byte{1, 0, 0, 4}}).frame(),
		(&pkt{proto: header.ProtoTCP, src: client4, dst: vip4, ttl: 64, frag: laterFrag, fragOff: 64, payload: []byte("later")}).frame(),
		(&pkt{v6: true, proto: header.ProtoSCTP, src: client6, dst: vip6, ttl: 1, frag: firstFrag, payload: []byte{0, 0, 0, 4}}).frame(),
		icmpAbout(q, netip.MustParseAddr("192.0.2.254"), vip4, q.ip()).frame(),
		icmpAbout(q6, client6, vip6, q6.ip()[:60]).frame(),
	}
}

// FuzzForward runs a sequence of rewrites (one per byte of ops) on a frame
// with the Parsed of the original frame, stale as it may become: nothing
// may panic, write outside the frame, or leave Off and Len outside B. A
// first rewrite that succeeds on a frame that decoded must leave a frame
// whose IP header checksum (and, for the frames built here, whole header
// chain) still decodes.
func FuzzForward(f *testing.F) {
	for i, s := range fuzzSeeds() {
		f.Add(s, []byte{byte(i), byte(i + 3), 10}, []byte{203, 0, 113, 20}, uint16(8080), uint32(i))
		f.Add(s, []byte{byte(i + 7), 9}, rs6.AsSlice(), uint16(80), uint32(i*977))
	}
	f.Fuzz(func(t *testing.T, frame, ops, a []byte, port uint16, x uint32) {
		if len(ops) > 8 {
			ops = ops[:8]
		}
		var addr netip.Addr
		switch {
		case len(a) >= 16:
			addr = netip.AddrFrom16([16]byte(a[:16]))
		case len(a) >= 4:
			addr = netip.AddrFrom4([4]byte(a[:4]))
		}
		other := lb4
		if addr.Is6() {
			other = lb6
		}
		var p flow.Parsed
		p.Decode(frame)
		frags := make([]Buf, 8)
		for i := range frags {
			frags[i] = Buf{B: make([]byte, 300), Off: 2}
		}
		b := load(frame)
		for i, op := range ops {
			snap := append([]byte(nil), b.B...)
			var r Result
			switch op % 16 {
			case 0:
				r = DNAT(&b.Buf, &p, addr, port, x&1 != 0)
			case 1:
				r = SNAT(&b.Buf, &p, addr, port, x&1 != 0)
			case 2:
				r = DecTTL(&b.Buf, &p)
			case 3:
				r = DR(&b.Buf, &p, macRS, macLB)
			case 4:
				r = SetMACs(&b.Buf, macRS, macLB)
			case 5:
				r = SetMACsVLAN(&b.Buf, macRS, macLB, uint16(x))
			case 6:
				r = Encap(&b.Buf, &p, &Tunnel{Src: other, Dst: addr, Type: TunnelType(x % 4), Port: port, Csum: x&4 != 0, NoPMTUDisc: x&8 != 0}, uint16(x), x)
			case 7, 8, 9:
				r = ICMPError(&b.Buf, &p, ICMPKind(op%16-6), int(port), addr, uint16(x))
			case 10:
				r = NATICMPIn(&b.Buf, &p, addr, port)
			case 11:
				r = NATICMPOut(&b.Buf, &p, addr, port)
			case 12:
				CheckMTU(&p, int(port), &Tunnel{Src: other, Dst: addr, Type: TunnelType(x % 4)})
				CheckMTU(&p, int(port), nil)
			case 13:
				p.Decode(b.Frame()) // sometimes a fresh Parsed
			case 14:
				r = CompleteChecksum(&b.Buf, &p)
			case 15:
				n, _ := FragmentIPv4(&b.Buf, int(port), frags)
				for _, d := range frags[:n] {
					if !d.valid() || d.Off != 2 {
						t.Fatalf("fragment Off %d Len %d", d.Off, d.Len)
					}
				}
			}
			if !b.valid() {
				t.Fatalf("op %d: Off %d Len %d outside B (%d)", op, b.Off, b.Len, len(b.B))
			}
			for j := range b.B {
				if (j < b.Off || j >= b.Off+b.Len) && b.B[j] != snap[j] {
					t.Fatalf("op %d: byte %d outside the frame changed", op, j)
				}
			}
			if i == 0 && r == Done && p.Reason == flow.ReasonNone && op%16 != 4 && op%16 != 5 && op%16 != 15 {
				var q flow.Parsed
				q.Decode(b.Frame())
				if q.Reason == flow.ReasonBadIPChecksum || q.Reason == flow.ReasonShortIP || q.Reason == flow.ReasonBadTotalLength {
					t.Fatalf("op %d: result does not decode: %v\n% x", op, q.Reason, b.Frame())
				}
			}
		}
	})
}
