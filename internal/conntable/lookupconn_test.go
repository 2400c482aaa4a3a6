package conntable

import (
	"net/netip"
	"testing"
	"time"
)

// TestLookupConnEqualsGet: the one-lock lookups return what LookupIn or
// LookupOut followed by Get return, control link included.
func TestLookupConnEqualsGet(t *testing.T) {
	tb, err := New(Config{Max: 64, Shards: 2, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	const now = int64(time.Hour)
	tpl := &Conn{Proto: 6, Flags: FlagTemplate | FlagInactive, CAddr: netip.MustParseAddr("198.18.0.10"),
		VAddr: netip.MustParseAddr("198.18.0.100"), VPort: 80, DAddr: netip.MustParseAddr("198.19.0.11"), DPort: 80,
		DestID: 1, Timeout: time.Minute}
	tref, err := tb.Insert(tpl, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Conn{
		{Proto: 6, Flags: FlagInactive, CAddr: netip.MustParseAddr("198.18.0.10"), CPort: 4000,
			VAddr: netip.MustParseAddr("198.18.0.100"), VPort: 80, DAddr: netip.MustParseAddr("198.19.0.11"), DPort: 8080,
			DestID: 1, Control: tref, Timeout: time.Minute},
		{Proto: 17, Flags: FlagInactive, CAddr: netip.MustParseAddr("2001:db8:c::10"), CPort: 53,
			VAddr: netip.MustParseAddr("2001:db8:5::100"), VPort: 53, DAddr: netip.MustParseAddr("2001:db8:5::11"), DPort: 53,
			DestID: 2, Timeout: time.Minute},
	} {
		ref, err := tb.Insert(c, now)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := tb.Get(ref)
		var got Conn
		if r, ok := tb.LookupInConn(c.Proto, c.CAddr, c.CPort, c.VAddr, c.VPort, now, &got); !ok || r != ref || got != want {
			t.Errorf("LookupInConn: %v %v\n got %+v\nwant %+v", r, ok, got, want)
		}
		got = Conn{}
		if r, ok := tb.LookupOutConn(c.Proto, c.DAddr, c.DPort, c.CAddr, c.CPort, now, &got); !ok || r != ref || got != want {
			t.Errorf("LookupOutConn: %v %v\n got %+v\nwant %+v", r, ok, got, want)
		}
	}
}
