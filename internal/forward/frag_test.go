package forward

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"golvs/internal/header"
)

// Options for the fragmentation tests: Record Route (type 7, not copied)
// and Loose Source Route (type 131, copied) of one address each, padded.
var (
	optRR   = []byte{7, 7, 4, 0, 0, 0, 0, ipoptNOP}
	optLSRR = []byte{131, 7, 4, 203, 0, 113, 9, ipoptEnd}
)

func TestFragmentIPv4Property(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	dst := make([]Buf, 400) // 3000 bytes of payload in fragments of 8
	for i := range dst {
		dst[i].B = make([]byte, 3200) // the largest fragment: a whole packet less 1 byte, plus link header and Off
	}
	for round := range propertyRounds / 4 {
		s := randPkt(r)
		s.v6 = false
		s.src, s.dst = randAddr(r, false), randAddr(r, false)
		s.payload = randBytes(r, r.IntN(3000))
		switch r.IntN(4) {
		case 0:
			s.opts = append(append([]byte(nil), optRR...), optLSRR...)
		case 1:
			s.opts = optRR
		}
		in := s.frame()
		b := load(in)
		eth := header.Ethernet(in)
		l3 := eth.PayloadOffset()
		orig := header.IPv4(in[l3:])
		hlen, tlen := orig.HeaderLength(), int(orig.TotalLength())
		mtu := hlen + 8 + r.IntN(tlen-hlen) // sometimes big enough already
		for i := range dst {
			dst[i].Off = r.IntN(64)
		}
		n, res := FragmentIPv4(&b.Buf, mtu, dst)
		if res != Done {
			t.Fatalf("round %d: %v", round, res)
		}
		if !bytes.Equal(b.B, b.before) {
			t.Fatalf("round %d: the source changed", round)
		}
		if tlen <= mtu {
			if n != 0 {
				t.Fatalf("round %d: %d fragments of a packet that fits", round, n)
			}
			continue
		}
		var data []byte
		for i := range n {
			fr := dst[i].Frame()
			if !bytes.Equal(fr[:l3], in[:l3]) {
				t.Fatalf("round %d frag %d: link header % x, want % x", round, i, fr[:l3], in[:l3])
			}
			h := header.IPv4(fr[l3:])
			if !h.IsValid(len(h)) || !h.IsChecksumValid() || int(h.TotalLength()) != len(h) {
				t.Fatalf("round %d frag %d: bad header % x", round, i, fr[l3:l3+hlen])
			}
			if len(h) > mtu || h.HeaderLength() != hlen {
				t.Fatalf("round %d frag %d: %d bytes, header %d (mtu %d)", round, i, len(h), h.HeaderLength(), mtu)
			}
			last := i == n-1
			if !last && (len(h)-hlen)%8 != 0 {
				t.Fatalf("round %d frag %d: data not a multiple of 8", round, i)
			}
			wantOff := orig.FragmentOffset() + uint16(len(data))
			if h.FragmentOffset() != wantOff || h.MF() != (!last || orig.MF()) || h.DF() != orig.DF() ||
				h.ID() != orig.ID() || h.TTL() != orig.TTL() || h.Protocol() != orig.Protocol() || h.TOS() != orig.TOS() ||
				h.SourceAddress() != orig.SourceAddress() || h.DestinationAddress() != orig.DestinationAddress() {
				t.Fatalf("round %d frag %d: header fields % x", round, i, fr[l3:l3+20])
			}
			wantOpts := append([]byte(nil), orig.Options()...)
			if i > 0 && len(wantOpts) > 0 && wantOpts[0] == 7 { // Record Route is not copied
				copy(wantOpts, bytes.Repeat([]byte{ipoptNOP}, 7))
			}
			if !bytes.Equal(h.Options(), wantOpts) {
				t.Fatalf("round %d frag %d: options % x, want % x", round, i, h.Options(), wantOpts)
			}
			data = append(data, h.Payload()...)
		}
		if !bytes.Equal(data, orig.Payload()) {
			t.Fatalf("round %d: reassembled data differs", round)
		}
	}
}

func TestFragmentIPv4Errors(t *testing.T) {
	s := &pkt{proto: header.ProtoUDP, src: client4, dst: vip4, sport: 1, dport: 2, ttl: 64, payload: make([]byte, 100)}
	in := s.frame()
	v6 := (&pkt{v6: true, proto: header.ProtoUDP, src: client6, dst: vip6, ttl: 64, payload: make([]byte, 100)}).frame()
	bufs := func(n, size int) []Buf {
		d := make([]Buf, n)
		for i := range d {
			d[i].B = make([]byte, size)
		}
		return d
	}
	tests := []struct {
		name  string
		in    []byte
		mtu   int
		dst   []Buf
		wantN int
		want  Result
	}{
		{"fits", in, 128, nil, 0, Done},
		{"two fragments", in, 100, bufs(2, 114), 2, Done},
		{"one buffer too few", in, 68, bufs(2, 200), 0, NoRoom},
		{"buffer too small", in, 100, bufs(2, 113), 0, NoRoom},
		{"less than 8 bytes of data", in, 27, bufs(20, 200), 0, Malformed},
		{"IPv6", v6, 100, bufs(2, 200), 0, Malformed},
		{"not IP", ethHdr(macLB, macClient, header.EtherTypeARP), 100, nil, 0, Malformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := load(tc.in)
			var before [][]byte
			for _, d := range tc.dst {
				before = append(before, bytes.Clone(d.B))
			}
			n, r := FragmentIPv4(&b.Buf, tc.mtu, tc.dst)
			if n != tc.wantN || r != tc.want {
				t.Fatalf("got %d %v, want %d %v", n, r, tc.wantN, tc.want)
			}
			if r != Done {
				for i, d := range tc.dst {
					if !bytes.Equal(d.B, before[i]) {
						t.Fatal("a buffer was written")
					}
				}
			}
		})
	}
}

func TestFragmentOptions(t *testing.T) {
	for _, tc := range []struct{ in, want []byte }{
		{[]byte{7, 7, 4, 1, 2, 3, 4, 0}, []byte{1, 1, 1, 1, 1, 1, 1, 0}},
		{[]byte{131, 3, 4, 1}, []byte{131, 3, 4, 1}},
		{[]byte{1, 68, 4, 5, 0}, []byte{1, 1, 1, 1, 1}},
		{[]byte{0, 7, 3, 9}, []byte{0, 7, 3, 9}},     // stops at End of Option List
		{[]byte{68, 9, 5, 0}, []byte{68, 9, 5, 0}},   // length past the options: stop
		{[]byte{68, 1, 5, 0}, []byte{68, 1, 5, 0}},   // length below 2: stop
		{[]byte{1, 1, 68}, []byte{1, 1, 68}},         // no length byte
		{[]byte{148, 4, 0, 0}, []byte{148, 4, 0, 0}}, // Router Alert is copied
		{[]byte{68, 4, 5, 0, 7, 3, 4}, []byte{1, 1, 1, 1, 1, 1, 1}},
	} {
		o := bytes.Clone(tc.in)
		fragmentOptions(o)
		if !bytes.Equal(o, tc.want) {
			t.Errorf("% x: got % x, want % x", tc.in, o, tc.want)
		}
	}
}
