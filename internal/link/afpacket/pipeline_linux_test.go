package afpacket

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"golvs/internal/clock"
	"golvs/internal/control"
	"golvs/internal/datapath"
	"golvs/internal/engine"
	"golvs/internal/header"
	"golvs/internal/link"
	"golvs/internal/service"
)

// TestPipelineNAT runs the real pipeline (control, engine, datapath) on
// the link: a NAT service VIP:80 -> 198.18.1.2:8080 (TCP) and VIP:53 ->
// 198.18.1.2:5353 (UDP), with an nftables ingress rule like hostnet's
// keeping the director's stack off the service's traffic. An 8 MB TCP
// transfer and UDP datagrams go through it: what the link hands over
// (GSO frames cut to segments, partial checksums) is what the pipeline
// can rewrite, and what it sends back the real server and the client
// take.
func TestPipelineNAT(t *testing.T) {
	tp := newTopo(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft command (nftables)")
	}
	tp.b.run(t, "nft", "add table netdev golvstest")
	tp.b.run(t, "nft", "add chain netdev golvstest in { type filter hook ingress device b0 priority -500 ; }")
	tp.b.run(t, "nft", "add rule netdev golvstest in meta pkttype host ip daddr 198.18.0.10 tcp dport 80 fib daddr type local drop")
	tp.b.run(t, "nft", "add rule netdev golvstest in meta pkttype host ip daddr 198.18.0.10 udp dport 53 fib daddr type local drop")

	vip, rs := netip.MustParseAddr("198.18.0.10"), netip.MustParseAddr("198.18.1.2")
	ctl := control.New(control.Config{Clock: clock.Real{}})
	eng, err := engine.New(engine.Config{Control: ctl, Clock: clock.Real{}, MaxConns: 1 << 12, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		proto        uint8
		vport, rport uint16
	}{{service.ProtoTCP, 80, 8080}, {service.ProtoUDP, 53, 5353}} {
		k := service.Key{Family: service.IPv4, Proto: s.proto, Addr: vip, Port: s.vport}
		if err := ctl.AddService(k, service.Config{Sched: "rr"}); err != nil {
			t.Fatal(err)
		}
		if err := ctl.AddDest(k, rs, s.rport, service.DestConfig{Fwd: service.Masq, Weight: 1}); err != nil {
			t.Fatal(err)
		}
	}
	neigh := datapath.NewNeighbours(nil, nil)
	neigh.Set(tp.idxB1, rs, tp.macC0, true)
	neigh.Set(tp.idxB0, netip.MustParseAddr("198.18.0.1"), tp.macA0, true)
	view := datapath.NewView([]datapath.Interface{
		{Index: tp.idxB0, Name: "b0", MAC: tp.macB0, MTU: 1500, Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/24"), netip.MustParsePrefix("198.18.0.10/32")}},
		{Index: tp.idxB1, Name: "b1", MAC: tp.macB1, MTU: 1500, Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.1.1/24")}},
	}, nil)
	pipe := datapath.New(datapath.Config{Engine: eng, View: view, Neighbours: neigh})

	l := openLink(t, tp.b, Config{Interfaces: []string{"b0", "b1"}, Reinject: true, Filter: &link.Filter{
		Services: []link.Match{
			{Addr: netip.PrefixFrom(vip, 32), Proto: header.ProtoTCP, Port: 80},
			{Addr: netip.PrefixFrom(vip, 32), Proto: header.ProtoUDP, Port: 53},
		},
		Replies: []link.Match{
			{Addr: netip.PrefixFrom(rs, 32), Proto: header.ProtoTCP, Port: 8080},
			{Addr: netip.PrefixFrom(rs, 32), Proto: header.ProtoUDP, Port: 5353},
		},
		Local:      []netip.Addr{vip, netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.1.1")},
		ICMPErrors: true,
	}})
	w := pipe.NewWorker(0)
	stop := runLink(t, l.Queue(0), w)

	// TCP: 8 MB to the VIP, hashed by the real server.
	var ln net.Listener
	tp.c.do(t, func() {
		if ln, err = net.Listen("tcp", "198.18.1.2:8080"); err != nil {
			t.Fatal(err)
		}
	})
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		h := sha256.New()
		io.Copy(h, c)
		c.Write(h.Sum(nil))
	}()
	data := make([]byte, 8<<20)
	rand.NewChaCha8([32]byte{2}).Read(data)
	want := sha256.Sum256(data)
	var c net.Conn
	tp.a.do(t, func() {
		if c, err = net.DialTimeout("tcp", "198.18.0.10:80", 5*time.Second); err != nil {
			t.Fatalf("dial the VIP: %v", err)
		}
	})
	c.SetDeadline(time.Now().Add(20 * time.Second))
	start := time.Now()
	if _, err := c.Write(data); err != nil {
		t.Fatalf("write: %v", err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.Equal(got, want[:]) {
		t.Fatalf("hash from the real server %x (%v), want %x", got, err, want)
	}
	t.Logf("8 MB through the NAT service in %v", time.Since(start).Round(time.Millisecond))

	// UDP: datagrams to VIP:53 echoed by the real server's port 5353,
	// the replies coming from the VIP.
	echo := listenUDP(t, tp.c, "198.18.1.2:5353")
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
	for i := 0; i < 20; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, 10+i*60)
		cl.WriteTo(msg, &net.UDPAddr{IP: net.ParseIP("198.18.0.10"), Port: 53})
		n, from, err := cl.ReadFrom(buf)
		if err != nil || !bytes.Equal(buf[:n], msg) || from.(*net.UDPAddr).IP.String() != "198.18.0.10" {
			t.Fatalf("udp %d: %v from %v, %d bytes", i, err, from, n)
		}
	}
	stop()
	st := l.Stats()
	t.Logf("link %+v", st)
	if st.GSOSegments == 0 {
		t.Errorf("no GSO frame was cut: the test did not exercise it")
	}
}
