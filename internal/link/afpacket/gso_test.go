package afpacket

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golvs/internal/checksum"
	"golvs/internal/header"
)

// superFrame builds a GSO frame as a sender's stack hands it to a veth:
// one TCP (or UDP) header over a payload of many segments, its transport
// checksum partial (the pseudo-header sum over the whole length), and the
// virtio header the kernel reports with it.
func superFrame(t *testing.T, v6, udp bool, payload []byte, mss int, flags uint8) ([]byte, vnetHdr) {
	t.Helper()
	p := &pkt{src: mustAddr("198.18.0.1"), dst: mustAddr("198.18.1.2"), proto: header.ProtoTCP, sport: 40000, dport: 80,
		payload: payload, tcpFlags: flags}
	if v6 {
		p.src, p.dst = mustAddr("2001:db8::1"), mustAddr("2001:db8:1::2")
	}
	if udp {
		p.proto = header.ProtoUDP
	}
	f := p.frame(macB, macA)
	l4 := 14 + 20
	if v6 {
		l4 = 14 + 40
	}
	v := vnetHdr{flags: vnetFlagNeedsCsum, gsoSize: uint16(mss), csumStart: uint16(l4)}
	l4len := len(f) - l4
	var pseudo uint16
	if v6 {
		pseudo = checksum.PseudoHeaderIPv6(p.src.As16(), p.dst.As16(), p.proto, uint32(l4len))
		v.gsoType = vnetGSOTCPv6
	} else {
		pseudo = checksum.PseudoHeaderIPv4(p.src.As4(), p.dst.As4(), p.proto, uint16(l4len))
		v.gsoType = vnetGSOTCPv4
	}
	v.csumOffset = 16
	if udp {
		v.gsoType, v.csumOffset = vnetGSOUDPL4, 6
	}
	binary.BigEndian.PutUint16(f[l4+int(v.csumOffset):], pseudo)
	return f, v
}

// TestGSOSegments cuts TCP and UDP super-frames and checks each segment:
// lengths, IPv4 IDs and header checksums, TCP sequence numbers and flags,
// and that finishing the partial checksum (as the egress will) gives a
// correct one; the payloads put together are the original.
func TestGSOSegments(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v6, udp bool
		size    int
		mss     int
	}{
		{"tcp4", false, false, 64000, 1448},
		{"tcp6", true, false, 30000, 1428},
		{"tcp4 exact multiple", false, false, 1448 * 3, 1448},
		{"udp4", false, true, 10000, 1472},
		{"tcp4 one segment", false, false, 100, 1448},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := make([]byte, tc.size)
			for i := range payload {
				payload[i] = byte(i * 7)
			}
			flags := header.TCPFlagACK | header.TCPFlagPSH | header.TCPFlagFIN | header.TCPFlagCWR
			f, v := superFrame(t, tc.v6, tc.udp, payload, tc.mss, flags)
			g, ok := parseGSO(f, v, int(v.csumStart))
			if !ok {
				t.Fatal("parseGSO refused the frame")
			}
			if want := (tc.size + tc.mss - 1) / tc.mss; g.nseg != want {
				t.Fatalf("%d segments, want %d", g.nseg, want)
			}
			var got []byte
			out := make([]byte, segBufSize)
			for i := 0; i < g.nseg; i++ {
				n := g.segment(i, out)
				seg := out[:n]
				l3 := seg[14:]
				var l4 []byte
				var pseudo uint16
				if tc.v6 {
					ip := header.IPv6(l3)
					if int(ip.PayloadLength()) != n-14-40 {
						t.Fatalf("segment %d: payload length %d", i, ip.PayloadLength())
					}
					l4 = l3[40:]
					pseudo = ip.PseudoHeaderSum(ip.NextHeader(), uint32(len(l4)))
				} else {
					ip := header.IPv4(l3)
					if int(ip.TotalLength()) != n-14 || !ip.IsChecksumValid() || ip.ID() != 7+uint16(i) {
						t.Fatalf("segment %d: total length %d, checksum valid %v, id %d", i, ip.TotalLength(), ip.IsChecksumValid(), ip.ID())
					}
					l4 = l3[20:]
					pseudo = checksum.PseudoHeaderIPv4(ip.SourceAddress(), ip.DestinationAddress(), ip.Protocol(), uint16(len(l4)))
				}
				// The partial checksum is the pseudo-header sum; the
				// egress completes it over the segment.
				co := 16
				hl := 20
				if tc.udp {
					co, hl = 6, 8
				}
				if c := binary.BigEndian.Uint16(l4[co:]); c != pseudo {
					t.Fatalf("segment %d: partial checksum %#x, want the pseudo-header sum %#x", i, c, pseudo)
				}
				binary.BigEndian.PutUint16(l4[co:], ^checksum.Sum(l4, 0))
				if checksum.Sum(l4, pseudo) != 0xffff {
					t.Fatalf("segment %d: completed checksum does not verify", i)
				}
				if tc.udp {
					if int(binary.BigEndian.Uint16(l4[4:])) != len(l4) {
						t.Fatalf("segment %d: UDP length %d", i, binary.BigEndian.Uint16(l4[4:]))
					}
				} else {
					tcp := header.TCP(l4)
					if tcp.SequenceNumber() != 1000+uint32(i*tc.mss) {
						t.Fatalf("segment %d: seq %d", i, tcp.SequenceNumber())
					}
					fl := tcp.Flags()
					last, first := i == g.nseg-1, i == 0
					if (fl&header.TCPFlagFIN != 0) != last || (fl&header.TCPFlagPSH != 0) != last || (fl&header.TCPFlagCWR != 0) != first || fl&header.TCPFlagACK == 0 {
						t.Fatalf("segment %d of %d: flags %#x", i, g.nseg, fl)
					}
				}
				if len(l4)-hl > tc.mss {
					t.Fatalf("segment %d: %d bytes of payload", i, len(l4)-hl)
				}
				got = append(got, l4[hl:]...)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("payloads differ")
			}
		})
	}
}

// TestGSORefused: what parseGSO cannot cut.
func TestGSORefused(t *testing.T) {
	f, v := superFrame(t, false, false, make([]byte, 5000), 1448, header.TCPFlagACK)
	for _, tc := range []struct {
		name  string
		f     []byte
		v     vnetHdr
		start int
	}{
		{"zero mss", f, vnetHdr{gsoType: vnetGSOTCPv4, gsoSize: 0}, 34},
		{"csum start not the transport header", f, vnetHdr{gsoType: vnetGSOTCPv4, gsoSize: 1448}, 30},
		{"old UFO", f, vnetHdr{gsoType: vnetGSOUDP, gsoSize: 1448}, 34},
		{"TCPv6 type on IPv4", f, vnetHdr{gsoType: vnetGSOTCPv6, gsoSize: 1448}, 34},
		{"truncated", f[:40], v, 34},
		{"no payload", f[:54], v, 34},
		{"short", f[:10], v, 34},
	} {
		if _, ok := parseGSO(tc.f, tc.v, tc.start); ok {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if _, ok := parseGSO(f, vnetHdr{gsoType: vnetGSOTCPv4 | vnetGSOECN, gsoSize: 1448}, 34); !ok {
		t.Errorf("ECN flag refused")
	}
}

// BenchmarkGSOSegment cuts a 64 KB TCP super-frame into its 45 segments
// (the copy and the header fixes of each); ns/op is per super-frame.
func BenchmarkGSOSegment(b *testing.B) {
	t := &testing.T{}
	f, v := superFrame(t, false, false, make([]byte, 65000), 1448, header.TCPFlagACK)
	out := make([]byte, segBufSize)
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		g, ok := parseGSO(f, v, int(v.csumStart))
		if !ok {
			b.Fatal("refused")
		}
		for i := 0; i < g.nseg; i++ {
			g.segment(i, out)
		}
	}
}
