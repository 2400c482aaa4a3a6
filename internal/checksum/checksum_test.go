package checksum

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// naiveSum is the slow reference: RFC 1071 §4.1's C loop, word by word in
// big-endian order with a 32-bit accumulator folded at the end.
func naiveSum(b []byte, initial uint16) uint16 {
	s := uint32(initial)
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
		s = (s & 0xffff) + (s >> 16) // keep it from overflowing
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s>>16 != 0 {
		s = (s & 0xffff) + (s >> 16)
	}
	return uint16(s)
}

func TestSumRFC1071Example(t *testing.T) {
	// RFC 1071 §3 "Numerical Examples": the bytes 00 01 f2 03 f4 f5 f6 f7
	// sum to ddf2 in big-endian order (and "Checksum: 220d").
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Sum(b, 0); got != 0xddf2 {
		t.Errorf("Sum = %#04x, want 0xddf2", got)
	}
	if got := ^Sum(b, 0); got != 0x220d {
		t.Errorf("checksum = %#04x, want 0x220d", got)
	}
}

func TestSumIPv4Header(t *testing.T) {
	// A captured IPv4 header whose checksum field (bytes 10-11) is 0x442e.
	hdr := []byte{
		0x45, 0x00, 0x00, 0x30, // version 4, IHL 5, TOS 0, total length 48
		0x44, 0x22, 0x40, 0x00, // ID 0x4422, DF, fragment offset 0
		0x80, 0x06, 0x44, 0x2e, // TTL 128, TCP, checksum 0x442e
		0x8c, 0x7c, 0x19, 0xac, // source 140.124.25.172
		0xae, 0x24, 0x1e, 0x2b, // destination 174.36.30.43
	}
	if got := Sum(hdr, 0); got != 0xffff {
		t.Errorf("Sum over a valid header = %#04x, want 0xffff (RFC 1071 §1 (3))", got)
	}
	c := append([]byte(nil), hdr...)
	c[10], c[11] = 0, 0
	if got := ^Sum(c, 0); got != 0x442e {
		t.Errorf("computed checksum = %#04x, want 0x442e", got)
	}
}

func TestSumEdges(t *testing.T) {
	for _, tc := range []struct {
		name    string
		b       []byte
		initial uint16
		want    uint16
	}{
		{"empty", nil, 0, 0},
		{"empty with initial", nil, 0x1234, 0x1234},
		{"one byte is the high byte", []byte{0xab}, 0, 0xab00},
		{"all ones", []byte{0xff, 0xff, 0xff, 0xff}, 0, 0xffff},
		{"carry wraps around", []byte{0xff, 0xff, 0x00, 0x01}, 0, 0x0001},
		{"initial carries", []byte{0x00, 0x01}, 0xffff, 0x0001},
		{"64 ones (carry out of bit 63)", bytesOf(0xff, 64), 0xffff, 0xffff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Sum(tc.b, tc.initial); got != tc.want {
				t.Errorf("Sum = %#04x, want %#04x", got, tc.want)
			}
			if got := naiveSum(tc.b, tc.initial); got != tc.want {
				t.Errorf("naiveSum = %#04x, want %#04x (reference is wrong)", got, tc.want)
			}
		})
	}
}

func bytesOf(v byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = v
	}
	return b
}

// TestSumDifferential checks the fast Sum against the naive loop on every
// length from 0 to 300 (so every tail path and every alignment of the
// 32-byte loop), with random, all-0xff and all-zero contents.
func TestSumDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 300+8)
	for n := 0; n <= 300; n++ {
		for off := 0; off < 8; off++ { // unaligned starts too
			b := buf[off : off+n]
			for _, fill := range []int{-1, 0x00, 0xff} {
				for i := range b {
					if fill < 0 {
						b[i] = byte(r.Uint32())
					} else {
						b[i] = byte(fill)
					}
				}
				init := uint16(r.Uint32())
				if got, want := Sum(b, init), naiveSum(b, init); got != want {
					t.Fatalf("len %d off %d fill %d initial %#04x: Sum = %#04x, naive = %#04x", n, off, fill, init, got, want)
				}
			}
		}
	}
}

func TestCombine(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		b := make([]byte, r.IntN(200))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		cut := r.IntN(len(b)+1) &^ 1 // the first part must be even
		got := Combine(Sum(b[:cut], 0), Sum(b[cut:], 0))
		if want := Sum(b, 0); got != want {
			t.Fatalf("Combine over a cut at %d of %d = %#04x, want %#04x", cut, len(b), got, want)
		}
	}
	if got := Combine(0xffff, 0x0001); got != 0x0001 {
		t.Errorf("Combine(0xffff, 1) = %#04x, want 1 (end-around carry)", got)
	}
}

func TestPseudoHeaders(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 1000 {
		var s4, d4 [4]byte
		var s6, d6 [16]byte
		fillRand(r, s4[:], d4[:], s6[:], d6[:])
		proto := uint8(r.Uint32())
		l16 := uint16(r.Uint32())
		l32 := r.Uint32()

		// Reference: lay the pseudo header out in bytes and sum it.
		p4 := make([]byte, 12)
		copy(p4[0:], s4[:])
		copy(p4[4:], d4[:])
		p4[9] = proto
		binary.BigEndian.PutUint16(p4[10:], l16)
		if got, want := PseudoHeaderIPv4(s4, d4, proto, l16), naiveSum(p4, 0); got != want {
			t.Fatalf("PseudoHeaderIPv4 = %#04x, want %#04x", got, want)
		}
		p6 := make([]byte, 40)
		copy(p6[0:], s6[:])
		copy(p6[16:], d6[:])
		binary.BigEndian.PutUint32(p6[32:], l32)
		p6[39] = proto
		if got, want := PseudoHeaderIPv6(s6, d6, proto, l32), naiveSum(p6, 0); got != want {
			t.Fatalf("PseudoHeaderIPv6 = %#04x, want %#04x", got, want)
		}
	}
}

func fillRand(r *rand.Rand, bs ...[]byte) {
	for _, b := range bs {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	}
}

func TestUpdate16RFC1624(t *testing.T) {
	// RFC 1624 §4: "Consider an IP packet header in which a 16-bit field
	// m = 0x5555 changes to m' = 0x3285. Also, the one's complement sum of
	// all other header octets is 0xCD7A." So HC = ~(0xCD7A + 0x5555) =
	// 0xDD2F, and recomputation gives HC' = ~(0xCD7A + 0x3285) = 0x0000.
	const c, m, m2 = 0xcd7a, 0x5555, 0x3285
	hc := ^Combine(c, m)
	if hc != 0xdd2f {
		t.Fatalf("HC = %#04x, want 0xdd2f", hc)
	}
	want := ^Combine(c, m2)
	if want != 0x0000 {
		t.Fatalf("recomputed HC' = %#04x, want 0x0000", want)
	}
	if got := Update16(hc, m, m2); got != want {
		t.Errorf("Update16 (Eqn. 3) = %#04x, want %#04x", got, want)
	}
	// RFC 1624 §3: Eqn. 2, HC + m + ~m', yields the -0 (0xFFFF) that
	// recomputation never does; make sure that is what we avoided.
	if eqn2 := Combine(Combine(hc, m), ^uint16(m2)); eqn2 != 0xffff {
		t.Errorf("Eqn. 2 gives %#04x; the RFC's counter-example expects 0xffff", eqn2)
	}
}

// TestUpdateProperty rewrites random 16-, 32- and 128-bit fields at random
// even offsets of random buffers and checks each incremental update
// against a full recomputation (tailscale checksum_test.go's method).
func TestUpdateProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for iter := range 20000 {
		n := 2 * (9 + r.IntN(100)) // even, ≥ 18 so a 16-byte field fits
		b := make([]byte, n)
		fillRand(r, b)
		ck := ^Sum(b, 0) // the checksum "field" lives outside b
		for step := range 8 {
			switch r.IntN(3) {
			case 0:
				off := 2 * r.IntN(n/2)
				old := binary.BigEndian.Uint16(b[off:])
				nw := uint16(r.Uint32())
				binary.BigEndian.PutUint16(b[off:], nw)
				ck = Update16(ck, old, nw)
			case 1:
				off := 2 * r.IntN((n-2)/2)
				var old, nw [4]byte
				copy(old[:], b[off:])
				fillRand(r, nw[:])
				copy(b[off:], nw[:])
				ck = Update32(ck, old, nw)
			case 2:
				off := 2 * r.IntN((n-14)/2)
				var old, nw [16]byte
				copy(old[:], b[off:])
				fillRand(r, nw[:])
				copy(b[off:], nw[:])
				ck = UpdateAddr(ck, old, nw)
			}
			if want := ^Sum(b, 0); ck != want {
				t.Fatalf("iteration %d step %d: incremental %#04x, recomputed %#04x", iter, step, ck, want)
			}
		}
	}
}

func TestUpdateAllZeroBoundary(t *testing.T) {
	// Rewriting the only non-zero word of a buffer to zero: recomputation
	// gives 0xffff (the sum is +0), Eqn. 3 the other zero. Documented on
	// Update16; this pins it so that a change is noticed.
	b := []byte{0x00, 0x00, 0x12, 0x34}
	ck := ^Sum(b, 0)
	if got := Update16(ck, 0x1234, 0); got != 0x0000 {
		t.Errorf("Update16 to all zeros = %#04x, want 0x0000", got)
	}
	if got := ^Sum([]byte{0, 0, 0, 0}, 0); got != 0xffff {
		t.Errorf("recomputed = %#04x, want 0xffff", got)
	}
}

func TestUpdatePartial(t *testing.T) {
	// A partial (offloaded) checksum field holds the un-complemented
	// pseudo-header sum; the documented identity updates it.
	src, dst, nsrc := [4]byte{192, 0, 2, 1}, [4]byte{198, 51, 100, 7}, [4]byte{203, 0, 113, 9}
	partial := PseudoHeaderIPv4(src, dst, 6, 40)
	got := ^Update32(^partial, src, nsrc)
	if want := PseudoHeaderIPv4(nsrc, dst, 6, 40); got != want {
		t.Errorf("partial update = %#04x, want %#04x", got, want)
	}
}

func TestForUDP(t *testing.T) {
	if ForUDP(0) != 0xffff || ForUDP(1) != 1 || ForUDP(0xffff) != 0xffff {
		t.Errorf("ForUDP(0, 1, 0xffff) = %#04x %#04x %#04x", ForUDP(0), ForUDP(1), ForUDP(0xffff))
	}
}

func TestAllocs(t *testing.T) {
	b := make([]byte, 1500)
	var a4 [4]byte
	var a16 [16]byte
	var sink uint16
	n := testing.AllocsPerRun(100, func() {
		sink += Sum(b, 0)
		sink += Combine(sink, 1)
		sink += PseudoHeaderIPv4(a4, a4, 6, 20)
		sink += PseudoHeaderIPv6(a16, a16, 6, 20)
		sink += Update16(sink, 1, 2)
		sink += Update32(sink, a4, a4)
		sink += UpdateAddr(sink, a16, a16)
		sink += ForUDP(sink)
	})
	if n != 0 {
		t.Errorf("allocs per run = %v, want 0", n)
	}
	_ = sink
}

var benchSink uint16

func BenchmarkSum1500(b *testing.B) {
	buf := make([]byte, 1500)
	fillRand(rand.New(rand.NewPCG(1, 1)), buf)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		benchSink += Sum(buf, 0)
	}
}

func BenchmarkNaiveSum1500(b *testing.B) {
	buf := make([]byte, 1500)
	fillRand(rand.New(rand.NewPCG(1, 1)), buf)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		benchSink += naiveSum(buf, 0)
	}
}

func BenchmarkSum20(b *testing.B) {
	buf := make([]byte, 20)
	fillRand(rand.New(rand.NewPCG(1, 1)), buf)
	b.ReportAllocs()
	for b.Loop() {
		benchSink += Sum(buf, 0)
	}
}

func BenchmarkUpdate16(b *testing.B) {
	b.ReportAllocs()
	c := uint16(0x1234)
	for i := 0; b.Loop(); i++ {
		c = Update16(c, uint16(i), uint16(i+1))
	}
	benchSink = c
}

func BenchmarkUpdate32(b *testing.B) {
	b.ReportAllocs()
	c := uint16(0x1234)
	o, n := [4]byte{192, 0, 2, 1}, [4]byte{198, 51, 100, 7}
	for b.Loop() {
		c = Update32(c, o, n)
		o, n = n, o
	}
	benchSink = c
}

func BenchmarkUpdateAddr(b *testing.B) {
	b.ReportAllocs()
	c := uint16(0x1234)
	o, n := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}, [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
	for b.Loop() {
		c = UpdateAddr(c, o, n)
		o, n = n, o
	}
	benchSink = c
}
