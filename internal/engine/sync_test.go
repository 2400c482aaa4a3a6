package engine

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golvs/internal/conntable"
	"golvs/internal/ipvssync"
	"golvs/internal/proto"
	"golvs/internal/service"
)

func newSyncQueue(t testing.TB, s ipvssync.Sysctls, size int) *SyncQueue {
	t.Helper()
	q, err := NewSyncQueue(SyncQueueConfig{Sysctls: s, RingSize: size})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// drained returns the queued records, one line each: protocol state
// client -> real server, flags, timeout.
func drained(q *SyncQueue) []string {
	var out []string
	q.Drain(func(r *SyncRecord) {
		e := r.Entry()
		tpl := e.Template()
		out = append(out, fmt.Sprintf("%s %v:%d->%v:%d flags=%#x %ds",
			proto.StateName(e.Proto, proto.State(e.State), tpl), e.CAddr, e.CPort, e.DAddr, e.DPort, e.Flags, e.Timeout))
	})
	return out
}

func wantRecords(t *testing.T, step string, q *SyncQueue, want ...string) {
	t.Helper()
	got := drained(q)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: queued\n%s\nwant\n%s", step, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSyncTCP follows a NAT connection on a master with the kernel's
// default sysctls: the third packet from the client (ESTABLISHED) is
// synced, then every 50th (53, 103...), and a change to a state other
// than ESTABLISHED at once. Replies count nothing.
func TestSyncTCP(t *testing.T) {
	f := newFixture(t, "rr", 0, 1, 1024)
	q := newSyncQueue(t, ipvssync.DefaultSysctls(), 64)
	f.e.SetSyncQueue(q)
	w := f.e.NewWorker(0)
	w.Begin()
	p := Packet{Proto: service.ProtoTCP, Src: client(1), SrcPort: 40000, Dst: testVIP, DstPort: 80, Len: 60, TCPFlags: proto.FlagSYN}
	d := w.In(&p)
	reply := Packet{Proto: service.ProtoTCP, Src: d.DAddr, SrcPort: d.DPort, Dst: p.Src, DstPort: p.SrcPort, Len: 60,
		TCPFlags: proto.FlagSYN | proto.FlagACK}
	w.Out(&reply)
	reply.TCPFlags = proto.FlagACK
	p.TCPFlags = proto.FlagACK
	w.In(&p) // 2: ESTABLISHED
	wantRecords(t, "two packets", q)
	w.In(&p) // 3
	const est = "ESTABLISHED 198.18.0.1:40000->198.19.0.1:80 flags=0x0 900s"
	wantRecords(t, "third packet", q, est)
	for range 10 {
		w.Out(&reply)
	}
	for i := 4; i <= 103; i++ {
		w.In(&p)
	}
	wantRecords(t, "packets 4 to 103", q, est, est)
	p.TCPFlags = proto.FlagFIN | proto.FlagACK
	w.In(&p)
	wantRecords(t, "FIN", q, "CLOSE_WAIT 198.18.0.1:40000->198.19.0.1:80 flags=0x100 60s")
	p.TCPFlags = proto.FlagACK
	w.In(&p)
	wantRecords(t, "ACK in CLOSE_WAIT", q)
	if n := q.Drops(); n != 0 {
		t.Errorf("%d drops", n)
	}

	// Stopped: nothing more is queued, from the next batch on.
	f.e.SetSyncQueue(nil)
	w.Begin()
	for range 100 {
		w.In(&p)
	}
	wantRecords(t, "stopped", q)
}

// TestSyncPersistent: with the default sysctls the template of a
// persistent connection is sent on every packet of its connections (the
// kernel's ip_vs_sync_conn does so; sync_refresh_period tames it), and
// the connection itself on its 3rd, 53rd... packet.
func TestSyncPersistent(t *testing.T) {
	f := newFixture(t, "rr", service.FlagPersistent, 1, 1024)
	q := newSyncQueue(t, ipvssync.DefaultSysctls(), 64)
	f.e.SetSyncQueue(q)
	w := f.e.NewWorker(0)
	w.Begin()
	p := Packet{Proto: service.ProtoUDP, Src: client(1), SrcPort: 5353, Dst: testVIP, DstPort: 80, Len: 60}
	const tpl = "NONE 198.18.0.1:0->198.19.0.1:80 flags=0x1100 300s"
	const conn = "UDP 198.18.0.1:5353->198.19.0.1:80 flags=0x100 300s"
	w.In(&p)
	wantRecords(t, "first packet", q, tpl)
	w.In(&p)
	w.In(&p)
	wantRecords(t, "packets 2 and 3", q, tpl, conn, tpl)

	// With sync_refresh_period 60 s the template is sent again only
	// when its expiry moved by 60 s or half its timeout.
	s := ipvssync.DefaultSysctls()
	s.RefreshPeriod = time.Minute
	q = newSyncQueue(t, s, 64)
	f.e.SetSyncQueue(q)
	w.Begin()
	p.SrcPort++
	for range 10 {
		w.In(&p)
	}
	wantRecords(t, "refresh period, 10 packets", q,
		"UDP 198.18.0.1:5354->198.19.0.1:80 flags=0x100 300s")
	f.clk.Advance(151 * time.Second)
	w.Begin()
	w.In(&p)
	wantRecords(t, "refresh period, after 151 s", q, tpl)
}

// TestSyncOnePacket: a one-packet connection is never sent, its template
// is.
func TestSyncOnePacket(t *testing.T) {
	f := newFixture(t, "rr", service.FlagPersistent|service.FlagOnePacket, 1, 1024)
	q := newSyncQueue(t, ipvssync.DefaultSysctls(), 64)
	f.e.SetSyncQueue(q)
	w := f.e.NewWorker(0)
	w.Begin()
	p := Packet{Proto: service.ProtoUDP, Src: client(1), SrcPort: 5353, Dst: testVIP, DstPort: 80, Len: 60}
	for range 3 {
		if d := w.In(&p); d.Verdict != Forward || d.Conn != 0 {
			t.Fatalf("one-packet connection: %+v", d)
		}
	}
	const tpl = "NONE 198.18.0.1:0->198.19.0.1:80 flags=0x1100 300s"
	wantRecords(t, "three one-packet connections", q, tpl, tpl, tpl)
}

// TestSyncRingFull: a full ring drops and counts; the drainer is woken
// when a ring gets its first record.
func TestSyncRingFull(t *testing.T) {
	f := newFixture(t, "rr", service.FlagPersistent, 1, 1024)
	q := newSyncQueue(t, ipvssync.DefaultSysctls(), 3) // rounded up to 4
	f.e.SetSyncQueue(q)
	w := f.e.NewWorker(0)
	w.Begin()
	select {
	case <-q.Wake():
		t.Fatal("woken with nothing queued")
	default:
	}
	p := Packet{Proto: service.ProtoUDP, Src: client(1), SrcPort: 5353, Dst: testVIP, DstPort: 80, Len: 60}
	for range 10 {
		w.In(&p)
	}
	select {
	case <-q.Wake():
	default:
		t.Fatal("not woken")
	}
	if got := len(drained(q)); got != 4 {
		t.Errorf("%d records drained, want 4", got)
	}
	if got := q.Drops(); got != 7 {
		t.Errorf("%d drops, want 7 (10 templates and a connection, 4 slots)", got)
	}
}

func TestSyncQueueConfig(t *testing.T) {
	bad := ipvssync.DefaultSysctls()
	bad.Threshold = 50
	for _, cfg := range []SyncQueueConfig{{Sysctls: bad}, {Sysctls: ipvssync.DefaultSysctls(), RingSize: -1},
		{Sysctls: ipvssync.DefaultSysctls(), RingSize: maxSyncRing + 1}} {
		if _, err := NewSyncQueue(cfg); err == nil {
			t.Errorf("NewSyncQueue(%+v) accepted", cfg)
		}
	}
}

// TestSyncAllocs: on a master the packet path still allocates nothing:
// an established connection, a persistent one (its template read and
// written too), and a new connection.
func TestSyncAllocs(t *testing.T) {
	for _, flags := range []service.Flags{0, service.FlagPersistent} {
		f := newFixture(t, "wlc", flags, 10, 1<<16)
		q := newSyncQueue(t, ipvssync.DefaultSysctls(), 1<<12)
		f.e.SetSyncQueue(q)
		w := f.e.NewWorker(0)
		w.Begin()
		syn := Packet{Proto: service.ProtoTCP, Src: client(1), SrcPort: 1000, Dst: testVIP, DstPort: 80, Len: 60, TCPFlags: proto.FlagSYN}
		w.In(&syn)
		ack := syn
		ack.TCPFlags = proto.FlagACK
		drain := func() { q.Drain(func(*SyncRecord) {}) }
		if n := testing.AllocsPerRun(500, func() { w.In(&ack); drain() }); n != 0 {
			t.Errorf("flags %#x: established In on a master: %v allocs", flags, n)
		}
		port := uint16(1)
		newConn := func() {
			p := Packet{Proto: service.ProtoTCP, Src: client(2), SrcPort: port, Dst: testVIP, DstPort: 80, Len: 60, TCPFlags: proto.FlagSYN}
			port++
			if d := w.In(&p); d.Verdict == Forward {
				f.e.Conns().Delete(d.Conn)
			}
			drain()
		}
		for range 1000 {
			newConn()
		}
		if n := testing.AllocsPerRun(500, newConn); n != 0 {
			t.Errorf("flags %#x: new connection on a master: %v allocs", flags, n)
		}
		if n := testing.AllocsPerRun(200, w.Begin); n != 0 {
			t.Errorf("flags %#x: Begin on a master: %v allocs", flags, n)
		}
	}
}

// TestSyncConcurrent: workers push while a drainer drains (run with
// -race): every record drained is whole, and drained + dropped = queued.
func TestSyncConcurrent(t *testing.T) {
	f := newFixture(t, "wlc", service.FlagPersistent, 4, 1<<14)
	q := newSyncQueue(t, ipvssync.DefaultSysctls(), 16)
	f.e.SetSyncQueue(q)
	var wg sync.WaitGroup
	done := make(chan struct{})
	var drainedN int
	drainerDone := make(chan struct{})
	go func() {
		defer close(drainerDone)
		check := func(r *SyncRecord) {
			e := r.Entry()
			if e.VAddr != testVIP || e.VPort != 80 {
				t.Errorf("torn record: %+v", e)
			}
			drainedN++
		}
		for {
			select {
			case <-done:
				q.Drain(check)
				return
			case <-q.Wake():
				q.Drain(check)
			}
		}
	}()
	for id := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := f.e.NewWorker(id)
			r := rand.New(rand.NewPCG(uint64(id), 3))
			for range 3000 {
				w.Begin()
				p := Packet{Proto: service.ProtoUDP, Src: client(id*64 + r.IntN(64)), SrcPort: 1024, Dst: testVIP, DstPort: 80, Len: 100}
				w.In(&p)
			}
		}()
	}
	wg.Wait()
	close(done)
	<-drainerDone
	// Every packet sends the template; conns add a few.
	if total := uint64(drainedN) + q.Drops(); total < 6000 {
		t.Errorf("%d drained + %d dropped, want at least 6000", drainedN, q.Drops())
	}
}

// BenchmarkInSync is BenchmarkIn's established flows on a master: each
// packet is also counted and decided on (ipvssync.SyncChain), and every
// 50th queued; the rings are drained every 64 packets (the daemon's
// work is not measured).
func BenchmarkInSync(b *testing.B) {
	for _, flags := range []service.Flags{0, service.FlagPersistent} {
		name := "plain"
		if flags != 0 {
			name = "persistent"
		}
		b.Run(name, func(b *testing.B) {
			const n = 1000
			f := newFixture(b, "wlc", flags, 10, n+1024)
			q := newSyncQueue(b, ipvssync.DefaultSysctls(), 1<<12)
			f.e.SetSyncQueue(q)
			w := f.e.NewWorker(0)
			w.Begin()
			pkts := make([]Packet, n)
			for i := range pkts {
				pkts[i] = Packet{Proto: service.ProtoTCP, Src: client(i / 60000), SrcPort: uint16(1024 + i%60000), Dst: testVIP, DstPort: 80,
					Len: 1500, TCPFlags: proto.FlagSYN}
				w.In(&pkts[i])
				pkts[i].TCPFlags = proto.FlagACK
				w.In(&pkts[i])
			}
			drain := func(*SyncRecord) {}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i&63 == 0 {
					w.Begin()
					q.Drain(drain)
				}
				w.In(&pkts[(i*7919)%n])
			}
		})
	}
}

// TestSyncRecordEntry: a queued record makes the entry ipvssync's
// EntryFromConn makes of the connection (the one checked against the
// kernel's captures), IPv4 and IPv6, and keeps a mixed-family one mixed
// (the builder refuses it).
func TestSyncRecordEntry(t *testing.T) {
	for _, c := range []conntable.Conn{
		{Proto: 6, State: 3, Flags: conntable.FlagInactive | conntable.FlagNoOutput | conntable.FlagRoute,
			CAddr: client(1), VAddr: testVIP, DAddr: netip.MustParseAddr("198.19.0.1"), CPort: 1, VPort: 80, DPort: 8080,
			FWMark: 7, Timeout: 1500 * time.Millisecond},
		{Proto: 17, CAddr: netip.MustParseAddr("2001:db8::1"), VAddr: netip.MustParseAddr("2001:db8::100"),
			DAddr: netip.MustParseAddr("2001:db8:1::1"), CPort: 2, VPort: 53, DPort: 53, Timeout: 300 * time.Second},
		{Proto: 6, Flags: conntable.FlagTunnel, CAddr: client(2), VAddr: testVIP, DAddr: netip.MustParseAddr("2001:db8:1::1"),
			CPort: 3, VPort: 80, DPort: 80, Timeout: time.Minute},
	} {
		var r SyncRecord
		r.fill(&c, &conntable.SyncInfo{State: c.State, Flags: c.Flags, Timeout: c.Timeout})
		if got, want := r.Entry(), ipvssync.EntryFromConn(&c); fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Errorf("record entry %+v\nwant %+v", got, want)
		}
	}
}
