package service

import (
	"net/netip"
	"sync"
	"testing"

	"golvs/internal/stats"
)

var (
	vip = netip.MustParseAddr("198.18.0.100")
	rip = netip.MustParseAddr("198.19.0.11")
	web = Key{Family: IPv4, Proto: ProtoTCP, Addr: vip, Port: 80}
)

func TestThresholdHysteresis(t *testing.T) {
	// ip_vs_bind_dest / ip_vs_unbind_dest: OVERLOAD at >= upper, cleared
	// below lower, or below 3/4 of upper without a lower threshold.
	tests := []struct {
		name       string
		u, l       uint32
		clearAfter int32 // connections left when OVERLOAD clears
	}{
		{"lower threshold", 8, 3, 2},
		{"three quarters of upper", 8, 0, 5},
		{"no thresholds", 0, 0, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDest(1, web, rip, 80, DestConfig{Weight: 1, UThreshold: tt.u, LThreshold: tt.l}, stats.New(1))
			for i := range 8 {
				if d.Overloaded() {
					t.Fatalf("overloaded at %d connections", i)
				}
				d.Bind(false, i%2 == 0)
			}
			if tt.u != 0 && !d.Overloaded() {
				t.Fatal("not overloaded at the upper threshold")
			}
			if tt.u == 0 {
				return
			}
			// Templates do not count.
			d.Bind(true, true)
			d.Unbind(true, true)
			cleared := int32(-1)
			for n := int32(7); n >= 0; n-- {
				d.Unbind(false, n%2 == 0)
				if !d.Overloaded() {
					cleared = n
					break
				}
			}
			if cleared != tt.clearAfter {
				t.Fatalf("OVERLOAD cleared with %d connections left, want %d", cleared, tt.clearAfter)
			}
		})
	}
}

func TestEditClearsOverload(t *testing.T) {
	d := NewDest(1, web, rip, 80, DestConfig{Weight: 1, UThreshold: 1}, stats.New(1))
	d.Bind(false, false)
	if !d.Overloaded() {
		t.Fatal("not overloaded")
	}
	// A lower upper threshold keeps the flag; a higher one clears it.
	d.SetConfig(DestConfig{Weight: 1, UThreshold: 1})
	if !d.Overloaded() {
		t.Fatal("cleared by an equal threshold")
	}
	d.SetConfig(DestConfig{Weight: 1, UThreshold: 5})
	if d.Overloaded() {
		t.Fatal("kept by a higher threshold")
	}
}

func TestLastWeight(t *testing.T) {
	d := NewDest(1, web, rip, 80, DestConfig{Weight: 3}, stats.New(1))
	d.SetConfig(DestConfig{Weight: 0})
	if d.Weight() != 0 || d.LastWeight() != 3 {
		t.Fatalf("weight %d last %d", d.Weight(), d.LastWeight())
	}
	d.SetConfig(DestConfig{Weight: 5})
	if d.LastWeight() != 5 {
		t.Fatalf("last %d", d.LastWeight())
	}
}

type countObserver struct{ n int }

func (o *countObserver) LoadChanged(*Dest) { o.n++ }

func TestObserverSeesEveryLoadChange(t *testing.T) {
	d := NewDest(1, web, rip, 80, DestConfig{Weight: 1}, stats.New(1))
	o := &countObserver{}
	d.SetObserver(o)
	d.Bind(false, true)
	d.ToActive()
	d.ToInactive()
	d.Unbind(false, true)
	d.SetConfig(DestConfig{Weight: 2})
	d.SetAvailable(false)
	if o.n != 6 {
		t.Fatalf("%d notifications, want 6", o.n)
	}
	d.SetObserver(nil)
	d.Bind(false, true)
	if o.n != 6 {
		t.Fatal("notified after SetObserver(nil)")
	}
}

func TestSnapshotLookup(t *testing.T) {
	mk := func(k Key) *Service { return &Service{Key: k} }
	ftp := mk(Key{Family: IPv4, Proto: ProtoTCP, Addr: vip, Port: 21})
	any := mk(Key{Family: IPv4, Proto: ProtoTCP, Addr: netip.MustParseAddr("198.18.0.101"), Port: 0})
	fw := mk(Key{Family: IPv4, FWMark: 7})
	fw6 := mk(Key{Family: IPv6, FWMark: 7})
	s := NewSnapshot([]*Service{mk(web), ftp, any, fw, fw6})
	tests := []struct {
		name  string
		proto uint8
		addr  string
		port  uint16
		mark  uint32
		want  *Service
	}{
		{"exact", ProtoTCP, "198.18.0.100", 80, 0, s.Get(web)},
		{"fwmark first", ProtoTCP, "198.18.0.100", 80, 7, fw},
		{"fwmark IPv6", ProtoUDP, "2001:db8::1", 53, 7, fw6},
		{"unknown mark falls back", ProtoTCP, "198.18.0.100", 80, 9, s.Get(web)},
		{"ftp data to unprivileged port", ProtoTCP, "198.18.0.100", 40000, 0, ftp},
		{"ftp active data port 20", ProtoTCP, "198.18.0.100", 20, 0, ftp},
		{"privileged port is not ftp data", ProtoTCP, "198.18.0.100", 443, 0, nil},
		{"udp is not ftp data", ProtoUDP, "198.18.0.100", 40000, 0, nil},
		{"port zero catch-all", ProtoTCP, "198.18.0.101", 443, 0, any},
		{"other protocol", ProtoUDP, "198.18.0.101", 443, 0, nil},
	}
	for _, tt := range tests {
		if got := s.Lookup(tt.proto, netip.MustParseAddr(tt.addr), tt.port, tt.mark); got != tt.want {
			t.Errorf("%s: got %v", tt.name, got)
		}
	}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	seen := map[uint32]bool{}
	var ds []*Dest
	for range 3000 {
		id, ok := r.Alloc()
		if !ok || id == 0 || seen[id] {
			t.Fatalf("alloc %d %v", id, ok)
		}
		seen[id] = true
		d := NewDest(id, web, rip, 80, DestConfig{Weight: 1}, nil)
		r.Set(d)
		ds = append(ds, d)
	}
	for _, d := range ds {
		if r.Lookup(d.ID) != d {
			t.Fatalf("lookup %d", d.ID)
		}
	}
	r.Free(ds[10].ID)
	if r.Lookup(ds[10].ID) != nil {
		t.Fatal("freed id still found")
	}
	if id, _ := r.Alloc(); id != ds[10].ID {
		t.Fatalf("freed id not reused: %d", id)
	}
	if r.Lookup(1<<31) != nil {
		t.Fatal("out of range id found")
	}
	// Lookups are safe during allocation.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 10000 {
			r.Lookup(uint32(i))
		}
	}()
	for range 2000 {
		id, _ := r.Alloc()
		r.Set(NewDest(id, web, rip, 80, DestConfig{Weight: 1}, nil))
	}
	wg.Wait()
}
