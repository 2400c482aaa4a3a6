package main

import (
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"golvs/internal/control"
	"golvs/internal/datapath"
	"golvs/internal/fwmark"
	"golvs/internal/hostnet"
	"golvs/internal/link"
	"golvs/internal/service"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// The rules follow the services: VIP matches for every service (FTP's
// data ports with a port-21 service), reply matches for NAT real servers
// that are not the director (trash included), nothing for DR, TUN and
// firewall-mark services; sorted and without duplicates.
func TestBuildRules(t *testing.T) {
	ctl := control.New(control.Config{})
	vip4, vip6 := netip.MustParseAddr("198.18.100.1"), netip.MustParseAddr("2001:db8:100::1")
	self := netip.MustParseAddr("198.18.1.1") // the director, as its own real server
	add := func(k service.Key, dests ...any) {
		t.Helper()
		if err := ctl.AddService(k, service.Config{Sched: "rr"}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(dests); i += 3 {
			a := netip.MustParseAddr(dests[i].(string))
			if err := ctl.AddDest(k, a, uint16(dests[i+1].(int)), service.DestConfig{Fwd: dests[i+2].(service.FwdMethod), Weight: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	web := service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: vip4, Port: 80}
	add(web, "198.18.1.2", 8080, service.Masq, "198.18.1.3", 8080, service.Masq, self.String(), 80, service.Masq)
	// The same real server behind a second service: one reply match.
	add(service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: vip4, Port: 81}, "198.18.1.2", 8080, service.Masq)
	add(service.Key{Family: service.IPv4, Proto: service.ProtoUDP, Addr: vip4, Port: 53}, "198.18.1.4", 53, service.Route, "198.18.1.5", 53, service.Tunnel)
	add(service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: vip4, Port: 21}, "198.18.1.6", 21, service.Route)
	add(service.Key{Family: service.IPv6, Proto: service.ProtoTCP, Addr: vip6, Port: 0}, "2001:db8:1::2", 0, service.Masq)
	fwm := service.Key{Family: service.IPv4, FWMark: 7}
	add(fwm, "198.18.1.7", 0, service.Masq)
	// A deleted NAT real server lives on in the trash with its
	// connections: its replies are still taken.
	if err := ctl.DeleteDest(web, netip.MustParseAddr("198.18.1.3"), 8080); err != nil {
		t.Fatal(err)
	}

	local := []netip.Addr{vip4, self, netip.MustParseAddr("198.18.0.2"), vip4}
	// Mark rules: mark 7 for two ports of a second VIP; mark 8 has no
	// service.
	markRules, err := fwmark.Parse("rules", []byte(`-A PREROUTING -d 198.18.100.2 -p tcp -m multiport --dports 80,443 -j MARK --set-mark 7
-A PREROUTING -d 198.18.100.3 -j MARK --set-mark 8`))
	if err != nil {
		t.Fatal(err)
	}
	ms := &markState{c: fwmark.NewClassifier(markRules)}
	got := buildRules(ctl.Snapshot(), ctl.Trash(), local, ms)
	want := planeRules{
		Services: []link.Match{
			{Addr: pfx("198.18.100.1/32"), Proto: 6, Port: 20},
			{Addr: pfx("198.18.100.1/32"), Proto: 6, Port: 21},
			{Addr: pfx("198.18.100.1/32"), Proto: 6, Port: 80},
			{Addr: pfx("198.18.100.1/32"), Proto: 6, Port: 81},
			{Addr: pfx("198.18.100.1/32"), Proto: 6, Port: 1024, PortLast: 65535},
			{Addr: pfx("198.18.100.1/32"), Proto: 17, Port: 53},
			{Addr: pfx("198.18.100.2/32"), Proto: 6, Port: 80, PortLast: 80},
			{Addr: pfx("198.18.100.2/32"), Proto: 6, Port: 443, PortLast: 443},
			{Addr: pfx("2001:db8:100::1/128"), Proto: 6},
		},
		Replies: []link.Match{
			{Addr: pfx("198.18.1.2/32"), Proto: 6, Port: 8080},
			{Addr: pfx("198.18.1.3/32"), Proto: 6, Port: 8080},
			{Addr: pfx("198.18.1.7/32")}, // fwmark NAT: every protocol and port
			{Addr: pfx("2001:db8:1::2/128"), Proto: 6},
		},
		Local:  []netip.Addr{netip.MustParseAddr("198.18.0.2"), self, vip4},
		FWMark: []service.Key{fwm},
		MarkDests: []link.Match{
			{Addr: pfx("198.18.100.2/32"), Proto: 6, Port: 80, PortLast: 80},
			{Addr: pfx("198.18.100.2/32"), Proto: 6, Port: 443, PortLast: 443},
		},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("rules (-want +got):\n%s", d)
	}

	// The filter and the ingress rule are the same lists; the filter
	// compiles.
	f := got.filter()
	if _, err := f.Compile(); err != nil {
		t.Fatal(err)
	}
	ing := got.ingress([]string{"d0", "d1"})
	if len(ing.Services) != len(got.Services) || len(ing.Replies) != len(got.Replies) || len(ing.Interfaces) != 2 {
		t.Fatalf("ingress %+v", ing)
	}
	for i, m := range got.Replies {
		if ing.Replies[i] != (hostnet.Match{Addr: m.Addr, Proto: m.Proto, Port: m.Port, PortLast: m.PortLast}) {
			t.Errorf("ingress reply %d: %+v, want %+v", i, ing.Replies[i], m)
		}
	}

	// Equality and union.
	again := buildRules(ctl.Snapshot(), ctl.Trash(), local, ms)
	if !got.equal(&again) {
		t.Error("the same inputs give different rules")
	}
	less := buildRules(service.NewSnapshot(nil), nil, local[:1], nil)
	if got.equal(&less) {
		t.Error("different rules compare equal")
	}
	u := less.union(&got)
	if len(u.Services) != len(got.Services) || len(u.Replies) != len(got.Replies) || len(u.Local) != 3 {
		t.Errorf("union %+v", u)
	}
}

func TestDataPlaneQueues(t *testing.T) {
	if n := dataPlaneQueues(0); n < 1 || n > maxDefaultQueues {
		t.Errorf("default %d queues", n)
	}
	if n := dataPlaneQueues(5); n != 5 {
		t.Errorf("asked for 5, got %d", n)
	}
}

// failingBatch fails its first Recv calls, then delivers one frame per
// call until stopped.
type failingBatch struct {
	fails    int
	recvs    int
	released int
}

func (b *failingBatch) Recv(frames []datapath.Frame) (int, error) {
	b.recvs++
	if b.recvs <= b.fails {
		return 0, errors.New("socket trouble")
	}
	return 1, nil
}
func (b *failingBatch) Send(frames []datapath.Frame, res []datapath.Result) (int, error) {
	return len(frames), nil
}
func (b *failingBatch) Release() error { b.released++; return nil }
func (b *failingBatch) Close() error   { return nil }

type countingProc struct {
	n    int
	stop chan struct{}
}

func (p *countingProc) Process(frames []datapath.Frame, res []datapath.Result) {
	p.n += len(frames)
	if p.n == 5 {
		close(p.stop)
	}
}

// TestRunWorkerRestarts: a worker whose link fails starts again and goes
// on processing.
func TestRunWorkerRestarts(t *testing.T) {
	b := &failingBatch{fails: 2}
	stop := make(chan struct{})
	p := &countingProc{stop: stop}
	var logs strings.Builder
	done := make(chan struct{})
	go func() {
		runWorker(b, p, stop, slog.New(slog.NewTextHandler(&logs, nil)))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("runWorker did not return after stop")
	}
	if p.n != 5 || strings.Count(logs.String(), "data-path worker failed; restarting") != 2 {
		t.Errorf("processed %d frames, log:\n%s", p.n, logs.String())
	}
}
