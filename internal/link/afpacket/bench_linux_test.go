package afpacket

import (
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"golvs/internal/datapath"
	"golvs/internal/header"
	"golvs/internal/link"
)

// macRewriter forwards frames from b0 to b1 (MAC rewrite, as DR does)
// and, when toHost, gives every other frame back to the host. It does not
// allocate.
type macRewriter struct {
	tp     *topo
	toHost bool
}

func (m *macRewriter) Process(frames []datapath.Frame, res []datapath.Result) {
	for i := range frames {
		b := frames[i].Buf.Frame()
		if m.toHost && i%2 == 1 {
			res[i] = datapath.Result{Action: datapath.ToHost}
			continue
		}
		copy(b[0:6], m.tp.macC0[:])
		copy(b[6:12], m.tp.macB1[:])
		res[i] = datapath.Result{Action: datapath.Transmit, Ifindex: m.tp.idxB1}
	}
}

// generator sends copies of frame out of a packet socket in ns, in
// batches of 64 with one sendmmsg each, until stop is closed or n frames
// are sent (n 0: no limit); it does not allocate.
func generator(t testing.TB, ns *testNS, ifname string, frame []byte, n int, stop <-chan struct{}, sent *atomic.Int64) {
	t.Helper()
	var tx *txSocket
	idx := ns.index(t, ifname)
	ns.do(t, func() {
		var err error
		if tx, err = newTxSocket(64, 4<<20); err != nil {
			t.Fatal(err)
		}
	})
	go func() {
		defer tx.close()
		for n == 0 || int(sent.Load()) < n {
			select {
			case <-stop:
				return
			default:
			}
			for !tx.full() {
				tx.add(idx, frame, vnetHdr{})
			}
			s, _ := tx.flush()
			sent.Add(int64(s))
			if s == 0 {
				runtime.Gosched()
			}
		}
	}()
}

// genFrame is a 60-byte UDP frame from the client to dst port 7001,
// through the director.
func genFrame(tp *topo, dst string) []byte {
	p := &pkt{src: netip.MustParseAddr("198.18.0.1"), dst: netip.MustParseAddr(dst), proto: header.ProtoUDP,
		sport: 1000, dport: 7001, payload: make([]byte, 18)}
	return p.frame(tp.macB0, tp.macA0)
}

// TestAllocs: the receive, send and release of a batch allocate nothing,
// GSO segmentation and re-injection decisions included.
func TestAllocs(t *testing.T) {
	if testing.Short() && raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	tp := newTopo(t)
	f := forwardFilter()
	f.Local = append(f.Local, netip.MustParseAddr("198.18.1.2")) // so that ToHost frames are Taken
	l := openLink(t, tp.b, Config{Interfaces: []string{"b0", "b1"}, Reinject: true, Filter: f})
	stop := make(chan struct{})
	defer close(stop)
	var sent atomic.Int64
	generator(t, tp.a, "a0", genFrame(tp, "198.18.1.2"), 0, stop, &sent)
	q := l.Queue(0)
	frames := make([]datapath.Frame, datapath.BatchSize)
	res := make([]datapath.Result, datapath.BatchSize)
	p := &macRewriter{tp: tp, toHost: true}
	got := 0
	allocs := testing.AllocsPerRun(200, func() {
		n, err := q.Recv(frames)
		if err != nil {
			t.Fatal(err)
		}
		got += n
		p.Process(frames[:n], res[:n])
		q.Send(frames[:n], res[:n])
		q.Release()
	})
	st := l.Stats()
	t.Logf("%.1f allocations per batch; %d frames; stats %+v", allocs, got, st)
	if allocs != 0 {
		t.Errorf("%.1f allocations per batch, want 0", allocs)
	}
	if got == 0 || st.Reinjected == 0 || st.TxFrames == 0 {
		t.Errorf("nothing went through")
	}
}

// BenchmarkForwardVeth forwards 60-byte UDP frames from one veth to the
// other through a queue (Recv, a MAC rewrite, Send, Release) while a
// generator in the client's namespace offers them as fast as it can. It
// reports the forwarder thread's CPU time per forwarded frame (ns/frame,
// user and system: the kernel's transmit work in sendmmsg, the peer
// namespace's receive processing that veth runs in the sender's context
// included; user-ns/frame is the Go side alone) and the forwarded rate. The machine has two cores,
// shared with the generator and with the peers' softirqs: the numbers
// are noisy, and a rate is what this box does, not what the link can.
func BenchmarkForwardVeth(b *testing.B) {
	tp := newTopo(b)
	// To an address the real server's namespace does not have and does
	// not forward to: its kernel drops the frames at the routing step,
	// cheaply and without answering.
	const sink = "198.18.1.99"
	tp.a.ip(b, "route add "+sink+"/32 via 198.18.0.2")
	l := openLink(b, tp.b, Config{Interfaces: []string{"b0", "b1"}, Filter: &link.Filter{
		Services: []link.Match{{Addr: netip.MustParsePrefix(sink + "/32"), Proto: header.ProtoUDP, Port: 7001}},
	}})
	stop := make(chan struct{})
	var sent atomic.Int64
	generator(b, tp.a, "a0", genFrame(tp, sink), 0, stop, &sent)
	defer close(stop)
	q := l.Queue(0)
	p := &macRewriter{tp: tp}
	type result struct {
		user, sys time.Duration
		forwarded int
	}
	done := make(chan result)
	b.ResetTimer()
	start := time.Now()
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var ru0, ru1 unix.Rusage
		unix.Getrusage(unix.RUSAGE_THREAD, &ru0)
		frames := make([]datapath.Frame, datapath.BatchSize)
		res := make([]datapath.Result, datapath.BatchSize)
		forwarded := 0
		for forwarded < b.N {
			n, err := q.Recv(frames)
			if err != nil {
				b.Error(err)
				break
			}
			p.Process(frames[:n], res[:n])
			s, _ := q.Send(frames[:n], res[:n])
			forwarded += s
			q.Release()
		}
		unix.Getrusage(unix.RUSAGE_THREAD, &ru1)
		done <- result{time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano()), time.Duration(ru1.Stime.Nano() - ru0.Stime.Nano()), forwarded}
	}()
	r := <-done
	wall := time.Since(start)
	b.StopTimer()
	st := l.Stats()
	b.ReportMetric(float64((r.user+r.sys).Nanoseconds())/float64(r.forwarded), "ns/frame")
	b.ReportMetric(float64(r.user.Nanoseconds())/float64(r.forwarded), "user-ns/frame")
	b.ReportMetric(float64(r.forwarded)/wall.Seconds(), "frames/s")
	b.ReportMetric(float64(st.RingDrops)/float64(max(1, int(st.FilterPassed))), "ring-drop-ratio")
}
