package checksum

import (
	"encoding/binary"
	"testing"
)

// FuzzSum: the fast sum equals the naive one on any input and any initial
// value, and a buffer cut at any even point sums to the Combine of its
// parts.
func FuzzSum(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Add([]byte{0xab}, uint16(0xffff))
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, uint16(0))
	f.Add(bytesOf(0xff, 67), uint16(1))
	f.Fuzz(func(t *testing.T, b []byte, initial uint16) {
		got, want := Sum(b, initial), naiveSum(b, initial)
		if got != want {
			t.Fatalf("Sum = %#04x, naive = %#04x", got, want)
		}
		cut := (len(b) / 3) &^ 1
		if c := Combine(Sum(b[:cut], initial), Sum(b[cut:], 0)); c != want {
			t.Fatalf("Combine at %d = %#04x, want %#04x", cut, c, want)
		}
	})
}

// FuzzUpdate: rewriting a 16-bit word, a 4-byte and a 16-byte field of any
// buffer with the incremental updates matches a full recomputation.
func FuzzUpdate(f *testing.F) {
	f.Add(bytesOf(0, 40), uint16(0x3285), []byte("0123456789abcdef"), uint8(0))
	f.Add(bytesOf(0xff, 18), uint16(0), []byte{}, uint8(7))
	f.Fuzz(func(t *testing.T, b []byte, w uint16, repl []byte, at uint8) {
		if len(b) < 18 {
			return
		}
		b = append([]byte(nil), b[:len(b)&^1]...) // the fuzzer's input is not ours to write
		ck := ^Sum(b, 0)
		// same compares an incremental result with a recomputed one. When
		// every covered byte is zero the sum is +0 and Eqn. 3 yields the
		// other zero (0x0000 for 0xFFFF), as the kernel's csum_replace
		// does; no header we update is all zeros (IPv4 has its version,
		// the pseudo header its protocol), so only that case is excused.
		same := func(inc uint16) bool {
			want := ^Sum(b, 0)
			return inc == want || (want == 0xffff && inc == 0)
		}
		var nw16 [16]byte
		copy(nw16[:], repl)

		off := 2 * (int(at) % (len(b) / 2))
		old := binary.BigEndian.Uint16(b[off:])
		binary.BigEndian.PutUint16(b[off:], w)
		ck = Update16(ck, old, w)
		if !same(ck) {
			t.Fatalf("Update16: %#04x, want %#04x", ck, ^Sum(b, 0))
		}
		ck = ^Sum(b, 0)

		off = 2 * (int(at) % ((len(b) - 2) / 2))
		old4 := [4]byte(b[off : off+4])
		copy(b[off:], nw16[:4])
		ck = Update32(ck, old4, [4]byte(nw16[:4]))
		if !same(ck) {
			t.Fatalf("Update32: %#04x, want %#04x", ck, ^Sum(b, 0))
		}
		ck = ^Sum(b, 0)

		off = 2 * (int(at) % ((len(b) - 14) / 2))
		old16 := [16]byte(b[off : off+16])
		copy(b[off:], nw16[:])
		ck = UpdateAddr(ck, old16, nw16)
		if !same(ck) {
			t.Fatalf("UpdateAddr: %#04x, want %#04x", ck, ^Sum(b, 0))
		}
	})
}
