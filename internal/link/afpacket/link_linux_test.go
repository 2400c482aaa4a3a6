package afpacket

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golvs/internal/datapath"
	"golvs/internal/flow"
	"golvs/internal/header"
	"golvs/internal/link"

	"golang.org/x/sys/unix"
)

// recvUntil receives from q until done reports true or the deadline
// passes, calling each for every frame, and releases every batch.
func recvUntil(t testing.TB, q *Queue, deadline time.Duration, each func(fr *datapath.Frame), done func() bool) {
	t.Helper()
	frames := make([]datapath.Frame, datapath.BatchSize)
	end := time.Now().Add(deadline)
	for !done() && time.Now().Before(end) {
		n, err := q.Recv(frames)
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		for i := range frames[:n] {
			each(&frames[i])
		}
		if err := q.Release(); err != nil {
			t.Fatal(err)
		}
	}
}

// udpPayload returns the UDP payload of a frame, or nil.
func udpPayload(b []byte) []byte {
	var p flow.Parsed
	p.Decode(b)
	if p.Reason != flow.ReasonNone || p.Tuple.Proto != header.ProtoUDP || !p.HasPorts {
		return nil
	}
	return p.Payload(b)
}

// TestRecvUDP: datagrams sent by a real UDP socket on the client arrive
// in batches, whole, with the interface's index, and the headroom in
// front of each frame is the pipeline's.
func TestRecvUDP(t *testing.T) {
	tp := newTopo(t)
	l := openLink(t, tp.b, Config{
		Interfaces: []string{"b0"},
		Filter: &link.Filter{
			Services: []link.Match{{Addr: netip.MustParsePrefix("198.18.0.10/32"), Proto: header.ProtoUDP, Port: 5000}},
			Local:    []netip.Addr{netip.MustParseAddr("198.18.0.10"), netip.MustParseAddr("198.18.0.2")},
		},
	})
	const n = 200
	var conn *net.UDPConn
	tp.a.do(t, func() {
		var err error
		conn, err = net.ListenUDP("udp4", nil)
		if err != nil {
			t.Fatal(err)
		}
	})
	defer conn.Close()
	go func() {
		dst := &net.UDPAddr{IP: net.ParseIP("198.18.0.10"), Port: 5000}
		for i := 0; i < n; i++ {
			conn.WriteTo(fmt.Appendf(nil, "golvs-%04d-%s", i, bytes.Repeat([]byte{'x'}, i)), dst)
			// Another port of the VIP: not service traffic.
			conn.WriteTo([]byte("other"), &net.UDPAddr{IP: net.ParseIP("198.18.0.10"), Port: 5001})
		}
	}()
	seen := map[string]bool{}
	batches, partial := 0, 0
	q := l.Queue(0)
	recvUntil(t, q, 5*time.Second, func(fr *datapath.Frame) {
		if fr.Ifindex != tp.idxB0 {
			t.Errorf("ifindex %d, want %d", fr.Ifindex, tp.idxB0)
		}
		if fr.Buf.Off != 64 || fr.Buf.Off+fr.Buf.Len != len(fr.Buf.B) {
			t.Errorf("buffer Off %d Len %d cap %d: want the frame after 64 bytes of headroom", fr.Buf.Off, fr.Buf.Len, len(fr.Buf.B))
		}
		if fr.PartialCsum {
			partial++
		}
		p := udpPayload(fr.Buf.Frame())
		if p == nil {
			t.Errorf("not a UDP frame: %x", fr.Buf.Frame())
			return
		}
		var i int
		if _, err := fmt.Sscanf(string(p), "golvs-%04d-", &i); err != nil {
			t.Errorf("payload %q", p)
			return
		}
		if want := fmt.Sprintf("golvs-%04d-%s", i, bytes.Repeat([]byte{'x'}, i)); string(p) != want {
			t.Errorf("payload %q, want %q", p, want)
		}
		seen[string(p)] = true
	}, func() bool { batches++; return len(seen) == n })
	if len(seen) != n {
		t.Fatalf("received %d of %d datagrams", len(seen), n)
	}
	st := l.Stats()
	t.Logf("%d datagrams in %d batches, %d with a partial checksum; stats %+v", n, batches, partial, st)
	if st.RxFrames != n || st.FilterPassed != n || st.RingDrops != 0 {
		t.Errorf("stats: rx %d, filter passed %d, ring drops %d; want %d, %d, 0", st.RxFrames, st.FilterPassed, st.RingDrops, n, n)
	}
}

// router is a stand-in for the pipeline: it forwards every frame from b0
// out of b1 and back, rewriting the MAC addresses (what DR does), and
// counts what it saw.
type router struct {
	tp              *topo
	frames, partial int
	tcpPartial      int
	maxLen          int
}

func (r *router) Process(frames []datapath.Frame, res []datapath.Result) {
	var p flow.Parsed
	for i := range frames {
		fr := &frames[i]
		b := fr.Buf.Frame()
		r.frames++
		r.maxLen = max(r.maxLen, len(b))
		if fr.PartialCsum {
			r.partial++
			p.Decode(b)
			if p.Tuple.Proto == header.ProtoTCP {
				r.tcpPartial++
			}
		}
		switch fr.Ifindex {
		case r.tp.idxB0:
			copy(b[0:6], r.tp.macC0[:])
			copy(b[6:12], r.tp.macB1[:])
			res[i] = datapath.Result{Action: datapath.Transmit, Ifindex: r.tp.idxB1}
		case r.tp.idxB1:
			copy(b[0:6], r.tp.macA0[:])
			copy(b[6:12], r.tp.macB0[:])
			res[i] = datapath.Result{Action: datapath.Transmit, Ifindex: r.tp.idxB0}
		default:
			res[i] = datapath.Result{Action: datapath.Drop}
		}
	}
}

// runLink runs link.Run on q with p; the function it returns stops it and
// waits (it is also called at cleanup).
func runLink(t testing.TB, q *Queue, p link.Processor) (stop func()) {
	t.Helper()
	stopc := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- link.Run(q, p, stopc) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(stopc)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("Run did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// forwardFilter is the filter of the forwarding tests: C's TCP and UDP
// ports, both ways.
func forwardFilter() *link.Filter {
	var ms []link.Match
	for _, a := range []string{"198.18.1.2/32", "2001:db8:1::2/128"} {
		ms = append(ms,
			link.Match{Addr: netip.MustParsePrefix(a), Proto: header.ProtoTCP, Port: 7000},
			link.Match{Addr: netip.MustParsePrefix(a), Proto: header.ProtoUDP, Port: 7001})
	}
	return &link.Filter{Services: ms, Replies: ms, Local: []netip.Addr{
		netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.1.1"),
		netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8:1::1"),
	}}
}

// TestForwardTCP moves TCP connections (8 MB each way... one way, IPv4
// and IPv6) and UDP datagrams between the client and the server through
// the link alone, the director's kernel not forwarding. It proves Send,
// the completion of partial checksums by the egress (veth senders leave
// every TCP and UDP checksum partial; a receiver drops a wrong one), and
// the cutting of GSO frames (a veth sender's TCP hands 64 KiB segments
// over as they are).
func TestForwardTCP(t *testing.T) {
	tp := newTopo(t)
	l := openLink(t, tp.b, Config{Interfaces: []string{"b0", "b1"}, Filter: forwardFilter()})
	r := &router{tp: tp}
	stop := runLink(t, l.Queue(0), r)

	const size = 8 << 20
	for _, addr := range []string{"198.18.1.2:7000", "[2001:db8:1::2]:7000"} {
		var ln net.Listener
		tp.c.do(t, func() {
			var err error
			ln, err = net.Listen("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
		})
		srv := make(chan []byte, 1)
		go func() {
			defer ln.Close()
			c, err := ln.Accept()
			if err != nil {
				srv <- nil
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			h := sha256.New()
			io.Copy(h, c)
			sum := h.Sum(nil)
			c.Write(sum)
			srv <- sum
		}()
		data := make([]byte, size)
		rng := rand.NewChaCha8([32]byte{1})
		rng.Read(data)
		want := sha256.Sum256(data)
		var c net.Conn
		tp.a.do(t, func() {
			var err error
			c, err = net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatalf("dial %s through the link: %v", addr, err)
			}
		})
		c.SetDeadline(time.Now().Add(20 * time.Second))
		start := time.Now()
		if _, err := c.Write(data); err != nil {
			t.Fatalf("%s: write: %v", addr, err)
		}
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.Equal(got, want[:]) {
			t.Fatalf("%s: server's hash %x (err %v), want %x", addr, got, err, want)
		}
		if s := <-srv; !bytes.Equal(s, want[:]) {
			t.Fatalf("%s: server got other data", addr)
		}
		t.Logf("%s: %d MB through the link in %v", addr, size>>20, time.Since(start).Round(time.Millisecond))
	}

	// UDP echo, sizes up to a full frame.
	echo := listenUDP(t, tp.c, "198.18.1.2:7001")
	go func() {
		buf := make([]byte, 2000)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(buf[:n], from)
		}
	}()
	cl := listenUDP(t, tp.a, "198.18.0.1:0")
	cl.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2000)
	for i := 0; i < 50; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, 1+i*28)
		if _, err := cl.WriteTo(msg, &net.UDPAddr{IP: net.ParseIP("198.18.1.2"), Port: 7001}); err != nil {
			t.Fatal(err)
		}
		n, _, err := cl.ReadFrom(buf)
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("udp echo %d: %v, %d bytes", i, err, n)
		}
	}

	stop()
	st := l.Stats()
	t.Logf("router saw %d frames (%d partial, %d TCP partial, largest %d bytes); stats %+v", r.frames, r.partial, r.tcpPartial, r.maxLen, st)
	if r.tcpPartial == 0 {
		t.Errorf("no TCP frame from a veth peer arrived with a partial checksum (PACKET_VNET_HDR / TP_STATUS_CSUMNOTREADY)")
	}
	if st.GSOFrames == 0 || st.GSOSegments <= st.GSOFrames {
		t.Errorf("no GSO frame was cut into segments (frames %d, segments %d)", st.GSOFrames, st.GSOSegments)
	}
	if r.maxLen > 1514 {
		t.Errorf("the pipeline saw a %d-byte frame", r.maxLen)
	}
	if st.TxErrors != 0 || st.GSODropped != 0 || st.Truncated != 0 || st.CsumUnoffloaded != 0 {
		t.Errorf("errors: %+v", st)
	}
}

// TestWriteFrame sends a frame kept outside the rings.
func TestWriteFrame(t *testing.T) {
	tp := newTopo(t)
	l := openLink(t, tp.b, Config{Interfaces: []string{"b0"}, Filter: forwardFilter()})
	srv := listenUDP(t, tp.c, "198.18.1.2:7002")
	p := &pkt{src: netip.MustParseAddr("198.18.1.1"), dst: netip.MustParseAddr("198.18.1.2"), proto: header.ProtoUDP,
		sport: 9, dport: 7002, payload: []byte("parked frame")}
	if err := l.WriteFrame(tp.idxB1, p.frame(tp.macC0, tp.macB1)); err != nil {
		t.Fatal(err)
	}
	srv.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, _, err := srv.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "parked frame" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
	if err := l.WriteFrame(999999, p.frame(tp.macC0, tp.macB1)); err == nil {
		t.Errorf("WriteFrame to no interface: no error")
	}
}

// sendFrames writes frames to a packet socket.
func sendFrames(t testing.TB, fd int, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if _, err := unix.Write(fd, f); err != nil {
			t.Fatalf("send frame: %v", err)
		}
	}
}

// withVLAN returns f with an 802.1Q tag of VLAN vid.
func withVLAN(f []byte, vid uint16) []byte {
	out := append([]byte(nil), f[:12]...)
	out = append(out, 0x81, 0x00, byte(vid>>8), byte(vid))
	return append(out, f[12:]...)
}

// TestFilterKernel checks the socket filter in the kernel, with the
// checks x/net/bpf's VM cannot run (VLAN tag present, packet type), on
// frames made by hand and sent from the client's side.
func TestFilterKernel(t *testing.T) {
	tp := newTopo(t)
	vip, vip6 := netip.MustParseAddr("198.18.0.10"), netip.MustParseAddr("2001:db8::10")
	client, client6 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("2001:db8::1")
	rs := netip.MustParseAddr("198.18.1.2")
	l := openLink(t, tp.b, Config{Interfaces: []string{"b0"}, Filter: &link.Filter{
		Services: []link.Match{
			{Addr: netip.PrefixFrom(vip, 32), Proto: header.ProtoUDP, Port: 5000},
			{Addr: netip.PrefixFrom(vip6, 128), Proto: header.ProtoUDP, Port: 5000},
		},
		Replies:    []link.Match{{Addr: netip.PrefixFrom(rs, 32), Proto: header.ProtoUDP, Port: 8080}},
		Local:      []netip.Addr{vip, vip6, netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("2001:db8::2")},
		ICMPErrors: true,
	}})
	udp := func(src, dst netip.Addr, sport, dport uint16, mark string, ext ...uint8) *pkt {
		return &pkt{src: src, dst: dst, proto: header.ProtoUDP, sport: sport, dport: dport, payload: []byte(mark), ext: ext}
	}
	other := [6]byte{0x02, 0, 0, 0, 0, 0x99}
	bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	icmpErr := &pkt{src: netip.MustParseAddr("198.18.0.1"), dst: vip, proto: header.ProtoICMPv4, icmpType: 3, icmpCode: 3,
		quoted: udp(vip, client, 5000, 4000, "q")}
	frames := map[string][]byte{
		"pass vip:5000":        udp(client, vip, 4000, 5000, "pass vip:5000").frame(tp.macB0, tp.macA0),
		"block vip:5001":       udp(client, vip, 4000, 5001, "block vip:5001").frame(tp.macB0, tp.macA0),
		"block tcp vip:5000":   (&pkt{src: client, dst: vip, proto: header.ProtoTCP, sport: 4000, dport: 5000, payload: []byte("block tcp vip:5000")}).frame(tp.macB0, tp.macA0),
		"block other host":     udp(client, vip, 4000, 5000, "block other host").frame(other, tp.macA0),
		"block broadcast":      udp(client, vip, 4000, 5000, "block broadcast").frame(bcast, tp.macA0),
		"block vlan":           withVLAN(udp(client, vip, 4000, 5000, "block vlan").frame(tp.macB0, tp.macA0), 5),
		"pass icmp error":      icmpErr.frame(tp.macB0, tp.macA0),
		"pass vip6:5000":       udp(client6, vip6, 4000, 5000, "pass vip6:5000").frame(tp.macB0, tp.macA0),
		"pass vip6 dstopts":    udp(client6, vip6, 4000, 5000, "pass vip6 dstopts", header.ProtoDestOpts).frame(tp.macB0, tp.macA0),
		"pass vip6 two exts":   udp(client6, vip6, 4000, 9999, "pass vip6 two exts", header.ProtoHopByHop, header.ProtoDestOpts).frame(tp.macB0, tp.macA0),
		"pass nat reply":       udp(rs, client, 8080, 4000, "pass nat reply").frame(tp.macB0, tp.macA0),
		"block reply to local": udp(rs, netip.MustParseAddr("198.18.0.2"), 8080, 4000, "block reply to local").frame(tp.macB0, tp.macA0),
		"block rs other port":  udp(rs, client, 8081, 4000, "block rs other port").frame(tp.macB0, tp.macA0),
	}
	fd := rawSocket(t, tp.a, "a0")
	for _, f := range frames {
		sendFrames(t, fd, pad(f))
	}
	sendFrames(t, fd, udp(client, vip, 4000, 5000, "end").frame(tp.macB0, tp.macA0))
	got := map[string]bool{}
	var p flow.Parsed
	end := false
	var endAt time.Time
	recvUntil(t, l.Queue(0), 5*time.Second, func(fr *datapath.Frame) {
		b := fr.Buf.Frame()
		p.Decode(b)
		switch {
		case p.Tuple.Proto == header.ProtoICMPv4:
			got["pass icmp error"] = true
		case p.Payload(b) != nil:
			m := string(p.Payload(b))
			if m == "end" {
				end, endAt = true, time.Now()
				return
			}
			got[m] = true
		}
	}, func() bool { return end && time.Since(endAt) > 100*time.Millisecond })
	if !end {
		t.Fatalf("the last frame did not arrive")
	}
	for name := range frames {
		pass := strings.HasPrefix(name, "pass")
		if got[name] != pass {
			t.Errorf("%s: received %v", name, got[name])
		}
	}
}

// TestRingWrap sends 20,000 small datagrams through a small ring (64
// blocks of 8 KiB, 36 frames each, 2,300 in all) that wraps around about
// 9 times: sent in bursts of 250 that never get more than 500 ahead of
// the reader (a low rate, whatever the machine's speed or the race
// detector's), nothing is lost. (At a low rate the kernel hands blocks
// over by timeout, part full: it is the number of blocks, times the
// block timeout, that bounds how long the reader may stall.)
func TestRingWrap(t *testing.T) {
	tp := newTopo(t)
	l := openLink(t, tp.b, Config{Interfaces: []string{"b0"}, BlockSize: 8 << 10, Blocks: 64, Filter: &link.Filter{
		Services: []link.Match{{Addr: netip.MustParsePrefix("198.18.0.10/32"), Proto: header.ProtoUDP, Port: 5000}},
	}})
	const total, burst, ahead = 20000, 250, 500
	// The kernel would answer each with a port unreachable: listen.
	listenUDP(t, tp.b, "198.18.0.10:5000")
	var conn *net.UDPConn
	tp.a.do(t, func() {
		var err error
		if conn, err = net.ListenUDP("udp4", nil); err != nil {
			t.Fatal(err)
		}
	})
	defer conn.Close()
	var received atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		dst := &net.UDPAddr{IP: net.ParseIP("198.18.0.10"), Port: 5000}
		msg := make([]byte, 18)
		for i := 0; i < total; i++ {
			binary.BigEndian.PutUint32(msg, uint32(i))
			conn.WriteTo(msg, dst)
			if i%burst == burst-1 {
				for int64(i)-received.Load() > ahead {
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
				}
			}
		}
	}()
	seen := make([]bool, total)
	start := time.Now()
	recvUntil(t, l.Queue(0), 15*time.Second, func(fr *datapath.Frame) {
		if p := udpPayload(fr.Buf.Frame()); len(p) == 18 {
			i := binary.BigEndian.Uint32(p)
			if i < total && !seen[i] {
				seen[i] = true
				received.Add(1)
			}
		}
	}, func() bool { return received.Load() == total })
	st := l.Stats()
	t.Logf("%d of %d in %v; stats %+v", received.Load(), total, time.Since(start).Round(time.Millisecond), st)
	if received.Load() != total || st.RingDrops != 0 {
		t.Errorf("received %d of %d, ring drops %d", received.Load(), total, st.RingDrops)
	}
}

// TestVLANRestored: without a filter, a tagged frame arrives with its tag
// put back where it was on the wire (the kernel moves it to metadata).
func TestVLANRestored(t *testing.T) {
	tp := newTopo(t)
	l := openLink(t, tp.b, Config{Interfaces: []string{"b0"}})
	sent := withVLAN((&pkt{src: netip.MustParseAddr("198.18.0.1"), dst: netip.MustParseAddr("198.18.0.10"),
		proto: header.ProtoUDP, sport: 1, dport: 2, payload: []byte("tagged frame, padded to sixty bytes or more")}).frame(tp.macB0, tp.macA0), 42)
	sendFrames(t, rawSocket(t, tp.a, "a0"), sent)
	var got []byte
	recvUntil(t, l.Queue(0), 5*time.Second, func(fr *datapath.Frame) {
		if b := fr.Buf.Frame(); len(b) >= 16 && b[12] == 0x81 && b[13] == 0x00 {
			got = append([]byte(nil), b...)
			if fr.Buf.Off != 64 {
				t.Errorf("headroom %d after the tag, want 64", fr.Buf.Off)
			}
		}
	}, func() bool { return got != nil })
	if !bytes.Equal(got, sent) {
		t.Fatalf("got  %x\nsent %x", got, sent)
	}
	if st := l.Stats(); st.VLANRestored != 1 {
		t.Errorf("VLANRestored = %d", st.VLANRestored)
	}
}

// TestFanout: with two queues, a flow's request to the VIP and its NAT
// reply from the real server (different address pairs, arriving on
// different interfaces) reach the same queue, and the flows spread over
// both; IPv4 and IPv6.
func TestFanout(t *testing.T) {
	tp := newTopo(t)
	l := openLink(t, tp.b, Config{Interfaces: []string{"b0", "b1"}, Queues: 2, Filter: &link.Filter{
		Services: []link.Match{
			{Addr: netip.MustParsePrefix("198.18.0.10/32"), Proto: header.ProtoUDP, Port: 5000},
			{Addr: netip.MustParsePrefix("2001:db8::10/128"), Proto: header.ProtoUDP, Port: 5000},
		},
		Replies: []link.Match{
			{Addr: netip.MustParsePrefix("198.18.1.2/32"), Proto: header.ProtoUDP, Port: 8080},
			{Addr: netip.MustParsePrefix("2001:db8:1::2/128"), Proto: header.ProtoUDP, Port: 8080},
		},
		Local: []netip.Addr{netip.MustParseAddr("198.18.0.10"), netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.1.1"),
			netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8:1::1")},
	}})
	const flows = 48 // per family
	type key struct {
		v6   bool
		port uint16
	}
	// queueOf[direction][flow] = queue.
	var mu sync.Mutex
	queueOf := [2]map[key]int{{}, {}}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for qi := 0; qi < 2; qi++ {
		wg.Add(1)
		go func(q *Queue) {
			defer wg.Done()
			frames := make([]datapath.Frame, datapath.BatchSize)
			var p flow.Parsed
			for {
				select {
				case <-stop:
					return
				default:
				}
				n, err := q.Recv(frames)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for i := range frames[:n] {
					p.Decode(frames[i].Buf.Frame())
					v6 := p.Tuple.Family == flow.FamilyIPv6
					if p.Tuple.DstPort == 5000 {
						queueOf[0][key{v6, p.Tuple.SrcPort}] = q.ID()
					} else if p.Tuple.SrcPort == 8080 {
						queueOf[1][key{v6, p.Tuple.DstPort}] = q.ID()
					}
				}
				mu.Unlock()
				q.Release()
			}
		}(l.Queue(qi))
	}
	for _, fam := range []struct{ client, vip, rs string }{
		{"198.18.0.1", "198.18.0.10", "198.18.1.2"},
		{"2001:db8::1", "2001:db8::10", "2001:db8:1::2"},
	} {
		listenUDP(t, tp.b, net.JoinHostPort(fam.vip, "5000"))
		rsConn := listenUDP(t, tp.c, net.JoinHostPort(fam.rs, "8080"))
		for i := 0; i < flows; i++ {
			c := listenUDP(t, tp.a, net.JoinHostPort(fam.client, "0"))
			c.WriteTo([]byte("request"), &net.UDPAddr{IP: net.ParseIP(fam.vip), Port: 5000})
			rsConn.WriteTo([]byte("reply"), &net.UDPAddr{IP: net.ParseIP(fam.client), Port: c.LocalAddr().(*net.UDPAddr).Port})
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		done := len(queueOf[0]) == 2*flows && len(queueOf[1]) == 2*flows
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	l.Queue(0).Wake()
	l.Queue(1).Wake()
	wg.Wait()
	per := [2][2]int{} // [family][queue]
	for k, q := range queueOf[0] {
		fi := 0
		if k.v6 {
			fi = 1
		}
		per[fi][q]++
		if r, ok := queueOf[1][k]; !ok || r != q {
			t.Errorf("flow %+v: request on queue %d, reply on %d (seen %v)", k, q, r, ok)
		}
	}
	t.Logf("flows per queue: IPv4 %v, IPv6 %v", per[0], per[1])
	if len(queueOf[0]) != 2*flows {
		t.Errorf("%d flows seen of %d", len(queueOf[0]), 2*flows)
	}
	for fi, p := range per {
		if p[0] == 0 || p[1] == 0 {
			t.Errorf("family %d: all flows on one queue: %v", fi, p)
		}
	}
}

// TestReinject: with the host's ingress rule dropping the service's
// traffic (an nftables netdev rule like hostnet's), frames the pipeline
// returns to the host reach the host's own socket exactly once, through
// the link's re-injection, with their partial checksums completed.
func TestReinject(t *testing.T) {
	tp := newTopo(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft command (nftables)")
	}
	tp.b.run(t, "nft", "add table netdev golvstest")
	tp.b.run(t, "nft", "add chain netdev golvstest in { type filter hook ingress device b0 priority -500 ; }")
	tp.b.run(t, "nft", "add rule netdev golvstest in meta pkttype host ip daddr 198.18.0.10 udp dport 5000 fib daddr type local counter drop")
	l := openLink(t, tp.b, Config{Interfaces: []string{"b0"}, Reinject: true, Filter: &link.Filter{
		Services: []link.Match{{Addr: netip.MustParsePrefix("198.18.0.10/32"), Proto: header.ProtoUDP, Port: 5000}},
		Local:    []netip.Addr{netip.MustParseAddr("198.18.0.10"), netip.MustParseAddr("198.18.0.2")},
	}})
	stop := runLink(t, l.Queue(0), toHost{})
	srv := listenUDP(t, tp.b, "198.18.0.10:5000")
	other := listenUDP(t, tp.b, "198.18.0.10:5001")
	cl := listenUDP(t, tp.a, "198.18.0.1:0")
	const n = 20
	for i := 0; i < n; i++ {
		cl.WriteTo(fmt.Appendf(nil, "msg %d", i), &net.UDPAddr{IP: net.ParseIP("198.18.0.10"), Port: 5000})
		cl.WriteTo([]byte("other"), &net.UDPAddr{IP: net.ParseIP("198.18.0.10"), Port: 5001})
	}
	got := map[string]int{}
	srv.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	for len(got) < n {
		k, _, err := srv.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(got), err)
		}
		got[string(buf[:k])]++
	}
	// Others: straight to the host's stack, not through the link.
	other.SetDeadline(time.Now().Add(5 * time.Second))
	for i := 0; i < n; i++ {
		if _, _, err := other.ReadFrom(buf); err != nil {
			t.Fatalf("non-service datagram %d: %v", i, err)
		}
	}
	// No duplicates behind.
	srv.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if k, _, err := srv.ReadFrom(buf); err == nil {
		t.Errorf("one more datagram: %q", buf[:k])
	}
	stop()
	for m, c := range got {
		if c != 1 {
			t.Errorf("%q received %d times", m, c)
		}
	}
	if st := l.Stats(); st.Reinjected != n || st.ToHost != n {
		t.Errorf("reinjected %d, to host %d; want %d", st.Reinjected, st.ToHost, n)
	}
}

// toHost returns every frame to the host.
type toHost struct{}

func (toHost) Process(frames []datapath.Frame, res []datapath.Result) {
	for i := range frames {
		res[i] = datapath.Result{Action: datapath.ToHost}
	}
}

// TestCloseReleases: Close gives back every file descriptor (rings,
// transmit sockets, eventfds, fanout members), and the queues refuse use
// afterwards.
func TestCloseReleases(t *testing.T) {
	tp := newTopo(t)
	before := openFDs(t)
	var l *Link
	var err error
	tp.b.do(t, func() {
		l, err = Open(Config{Interfaces: []string{"b0", "b1"}, Queues: 2, Reinject: true, Filter: forwardFilter()})
	})
	if err != nil {
		t.Fatal(err)
	}
	if opened := openFDs(t) - before; opened < 2*2+2*2+1 {
		t.Errorf("only %d descriptors open", opened)
	}
	if err := l.SetFilter(forwardFilter()); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors before Open, %d after Close", before, after)
	}
	frames := make([]datapath.Frame, 4)
	if _, err := l.Queue(0).Recv(frames); err != link.ErrClosed {
		t.Errorf("Recv after Close: %v", err)
	}
	if err := l.SetFilter(forwardFilter()); err != link.ErrClosed {
		t.Errorf("SetFilter after Close: %v", err)
	}
	if err := l.WriteFrame(1, make([]byte, 60)); err == nil {
		t.Errorf("WriteFrame after Close: no error")
	}
	// A failed Open leaves nothing open either.
	tp.b.do(t, func() {
		_, err = Open(Config{Interfaces: []string{"b0", "nosuchif"}, Filter: forwardFilter()})
	})
	if err == nil {
		t.Errorf("Open with a missing interface succeeded")
	}
	tp.b.do(t, func() {
		_, err = Open(Config{Interfaces: []string{"b0"}, Blocks: 1 << 20, Filter: forwardFilter()})
	})
	if err == nil {
		t.Errorf("Open with a 1 TiB ring succeeded")
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors before, %d after failed Opens", before, after)
	}
}

// TestReinjectOrphanReply: a NAT real server's packet that the pipeline
// returns to the host (no connection: IPVS's NF_ACCEPT) is forwarded by
// the director's kernel after re-injection, as without GoLVS.
func TestReinjectOrphanReply(t *testing.T) {
	tp := newTopo(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft command (nftables)")
	}
	tp.b.sysctl(t, "net/ipv4/ip_forward", "1")
	tp.b.run(t, "nft", "add table netdev golvstest")
	tp.b.run(t, "nft", "add chain netdev golvstest in { type filter hook ingress device b1 priority -500 ; }")
	tp.b.run(t, "nft", "add rule netdev golvstest in meta pkttype host ip saddr 198.18.1.2 udp sport 8080 fib daddr type != local counter drop")
	l := openLink(t, tp.b, Config{Interfaces: []string{"b1"}, Reinject: true, Filter: &link.Filter{
		Replies: []link.Match{{Addr: netip.MustParsePrefix("198.18.1.2/32"), Proto: header.ProtoUDP, Port: 8080}},
		Local:   []netip.Addr{netip.MustParseAddr("198.18.1.1"), netip.MustParseAddr("198.18.0.2")},
	}})
	runLink(t, l.Queue(0), toHost{})
	cl := listenUDP(t, tp.a, "198.18.0.1:4000")
	rs := listenUDP(t, tp.c, "198.18.1.2:8080")
	for i := 0; i < 3; i++ {
		rs.WriteTo([]byte("orphan"), &net.UDPAddr{IP: net.ParseIP("198.18.0.1"), Port: 4000})
	}
	cl.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	for i := 0; i < 3; i++ {
		if n, _, err := cl.ReadFrom(buf); err != nil || string(buf[:n]) != "orphan" {
			t.Fatalf("datagram %d: %q, %v", i, buf[:n], err)
		}
	}
	// The counter moves after the send that delivered the datagram:
	// give the queue's goroutine a moment to get there.
	deadline := time.Now().Add(2 * time.Second)
	for l.Stats().Reinjected < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := l.Stats(); st.Reinjected != 3 {
		t.Errorf("reinjected %d", st.Reinjected)
	}
}

// TestInterfaceDown: an interface going down makes its socket report
// ENETDOWN; Recv clears it rather than spinning, and frames flow again
// once the interface is back up.
func TestInterfaceDown(t *testing.T) {
	tp := newTopo(t)
	l := openLink(t, tp.b, Config{Interfaces: []string{"b0"}, PollTimeout: 50 * time.Millisecond, Filter: &link.Filter{
		Services: []link.Match{{Addr: netip.MustParsePrefix("198.18.0.10/32"), Proto: header.ProtoUDP, Port: 5000}},
	}})
	q := l.Queue(0)
	tp.b.ip(t, "link set b0 down")
	frames := make([]datapath.Frame, datapath.BatchSize)
	calls := 0
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); calls++ {
		if _, err := q.Recv(frames); err != nil {
			t.Fatal(err)
		}
	}
	if calls > 20 {
		t.Errorf("%d Recv calls in 300 ms with a poll timeout of 50 ms: spinning", calls)
	}
	if st := l.Stats(); st.LinkErrors == 0 {
		t.Errorf("no link error counted")
	}
	tp.b.ip(t, "link set b0 up")
	cl := listenUDP(t, tp.a, "198.18.0.1:0")
	got := false
	recvUntil(t, q, 5*time.Second, func(fr *datapath.Frame) { got = got || udpPayload(fr.Buf.Frame()) != nil }, func() bool {
		if !got {
			cl.WriteTo([]byte("again"), &net.UDPAddr{IP: net.ParseIP("198.18.0.10"), Port: 5000})
		}
		return got
	})
	if !got {
		t.Fatalf("no frame after the interface came back up")
	}
}
