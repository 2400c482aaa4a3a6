package addrset

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestContains(t *testing.T) {
	pfx := func(s string) Range { return FromPrefix(netip.MustParsePrefix(s)) }
	s, err := New([]Range{
		pfx("198.18.5.0/24"), pfx("198.18.5.128/25"), pfx("198.18.7.1/32"),
		{netip.MustParseAddr("198.18.9.250"), netip.MustParseAddr("198.18.10.5")},
		pfx("198.18.10.6/32"), // adjacent: merged
		pfx("2001:db8:bad::/48"), pfx("2001:db8::1/128"),
		pfx("255.255.255.255/32"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 6 {
		t.Errorf("Len = %d, want 6 merged ranges", s.Len())
	}
	for _, tc := range []struct {
		a    string
		want bool
	}{
		{"198.18.5.0", true}, {"198.18.5.255", true}, {"198.18.4.255", false}, {"198.18.6.0", false},
		{"198.18.7.1", true}, {"198.18.7.2", false},
		{"198.18.9.250", true}, {"198.18.10.6", true}, {"198.18.10.7", false},
		{"::ffff:198.18.5.9", true},
		{"2001:db8:bad:ffff::1", true}, {"2001:db8:bae::", false}, {"2001:db8::1", true}, {"2001:db8::2", false},
		{"255.255.255.255", true}, {"0.0.0.0", false},
	} {
		if got := s.Contains(netip.MustParseAddr(tc.a)); got != tc.want {
			t.Errorf("Contains(%s) = %v, want %v", tc.a, got, tc.want)
		}
	}
	var empty *Set
	if empty.Contains(netip.MustParseAddr("198.18.0.1")) {
		t.Error("the nil set contains an address")
	}
	if _, err := New([]Range{{netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.1")}}); err == nil {
		t.Error("a reversed range was accepted")
	}
}

// TestAgainstModel checks Contains against a linear scan over random
// ranges of a small address space.
func TestAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	addr := func(v uint32) netip.Addr {
		return netip.AddrFrom4([4]byte{198, 18, byte(v >> 8), byte(v)})
	}
	for range 200 {
		var rs []Range
		var lo, hi []uint32
		for range r.IntN(8) {
			a := r.Uint32N(512)
			b := a + r.Uint32N(20)
			rs = append(rs, Range{addr(a), addr(b)})
			lo, hi = append(lo, a), append(hi, b)
		}
		s, err := New(rs)
		if err != nil {
			t.Fatal(err)
		}
		for v := uint32(0); v < 540; v++ {
			want := false
			for i := range lo {
				want = want || (v >= lo[i] && v <= hi[i])
			}
			if got := s.Contains(addr(v)); got != want {
				t.Fatalf("ranges %v: Contains(%v) = %v, want %v", rs, addr(v), got, want)
			}
		}
	}
}

func TestContainsAllocs(t *testing.T) {
	s, _ := New([]Range{FromPrefix(netip.MustParsePrefix("198.18.0.0/16")), FromPrefix(netip.MustParsePrefix("2001:db8::/32"))})
	a, b := netip.MustParseAddr("198.18.3.4"), netip.MustParseAddr("2001:db8::5")
	if n := testing.AllocsPerRun(100, func() { s.Contains(a); s.Contains(b) }); n != 0 {
		t.Errorf("Contains allocates %v times", n)
	}
}

func BenchmarkContains1000(b *testing.B) {
	var rs []Range
	for i := range 1000 {
		rs = append(rs, Range{netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})})
	}
	s, _ := New(rs)
	a := netip.MustParseAddr("198.18.2.77")
	b.ReportAllocs()
	for b.Loop() {
		s.Contains(a)
	}
}
