package hostnet

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/nftables"

	"golvs/internal/addrset"
)

func TestSetRanges(t *testing.T) {
	a := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	// An interval set as the kernel lists it: 198.18.0.0/28 and
	// 198.18.1.5-198.18.1.9, then 198.18.9.0 to the top.
	el := []nftables.SetElement{
		{Key: a("198.18.0.16"), IntervalEnd: true},
		{Key: a("198.18.0.0")},
		{Key: a("198.18.1.10"), IntervalEnd: true},
		{Key: a("198.18.1.5")},
		{Key: a("198.18.9.0")},
	}
	got, err := setRanges(el, 4, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "[{198.18.0.0 198.18.0.15} {198.18.1.5 198.18.1.9} {198.18.9.0 255.255.255.255}]"
	if fmt.Sprint(got) != want {
		t.Errorf("interval ranges %v, want %v", got, want)
	}
	got, err = setRanges([]nftables.SetElement{{Key: a("2001:db8::1")}, {Key: a("2001:db8::3")}}, 16, false)
	if err != nil || fmt.Sprint(got) != "[{2001:db8::1 2001:db8::1} {2001:db8::3 2001:db8::3}]" {
		t.Errorf("plain ranges %v, %v", got, err)
	}
	if _, err := setRanges([]nftables.SetElement{{Key: []byte{1, 2}}}, 4, false); err == nil {
		t.Error("a short element was accepted")
	}
	s, _ := addrset.New(got)
	if !s.Contains(netip.MustParseAddr("2001:db8::3")) {
		t.Error("set lacks 2001:db8::3")
	}
}

func TestParseSetName(t *testing.T) {
	for in, want := range map[string]string{"inet/filter/deny": "inet filter deny", "ip f2b addr-set-sshd": "ip f2b addr-set-sshd"} {
		n, err := ParseSetName(in)
		if err != nil || n.String() != want {
			t.Errorf("ParseSetName(%q) = %v, %v", in, n, err)
		}
	}
	for _, in := range []string{"inet/filter", "foo/t/s", ""} {
		if _, err := ParseSetName(in); err == nil {
			t.Errorf("ParseSetName(%q) accepted", in)
		}
	}
}
