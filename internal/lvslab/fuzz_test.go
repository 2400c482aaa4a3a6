package lvslab

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// seedFrames returns the frames of a small scenario exercising ARP, ND,
// ICMP, UDP, TCP, IPIP and fragments: fuzz seeds.
func seedFrames(t testing.TB) [][]byte {
	l, client, d, _ := tunNet(t, 60, true)
	c, _ := client.DialTCP(netip.AddrPort{}, netip.AddrPortFrom(d.vip, 80), nil)
	l.Drain()
	c.Write(bytes.Repeat([]byte("a"), 2000))
	l.Advance(time.Second)
	u, _ := client.ListenUDP(netip.AddrPort{}, nil)
	u.WriteTo(bytes.Repeat([]byte("b"), 3000), ap("198.51.100.21:53"))
	client.Ping(netip.Addr{}, ip("198.51.100.21"), 8)
	l.Drain()
	var out [][]byte
	for _, seg := range []string{"left", "right"} {
		out = append(out, l.frames(seg)...)
	}
	l2, a, _ := twoHosts(t, 61, true)
	a.Ping(netip.Addr{}, ip("2001:db8::2"), 8)
	l2.Drain()
	return append(out, l2.frames("lan")...)
}

// FuzzHostInput feeds arbitrary frames to a host with every feature on:
// no input may panic or make the network loop.
func FuzzHostInput(f *testing.F) {
	for _, fr := range seedFrames(f) {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		n := New(Config{Seed: 1, MaxSteps: 10_000, Fatalf: t.Fatalf})
		lan := n.NewSegment("lan")
		h := n.NewHost("h", HostConfig{Forwarding: true, Decap: true})
		ifc := h.AddInterfaceMAC(lan, "eth0", MAC{0x02, 0, 0, 0, 0, 0x05}, pfx("198.51.100.21/24"), pfx("192.0.2.1/24"), pfx("2001:db8::2/64"))
		h.Loopback().AddAddr(pfx("203.0.113.100/32"))
		peer := n.NewHost("peer", HostConfig{})
		peer.AddInterface(lan, "eth0", pfx("198.51.100.1/24"), pfx("192.0.2.10/24"), pfx("2001:db8::1/64"))
		h.ListenTCP(anyPort(80), EchoTCP)
		h.ListenUDP(anyPort(53), EchoUDP)
		peer.DialTCP(netip.AddrPort{}, ap("198.51.100.21:80"), nil)
		n.Drain()
		_ = Summarize(frame)
		if len(frame) >= ethHdrLen {
			// Address it to h so it gets past the MAC filter.
			frame = bytes.Clone(frame)
			copy(frame, ifc.MAC().bytes())
		}
		h.Inject(ifc.Index(), frame)
		n.Drain()
		n.Advance(2 * time.Minute)
	})
}

func (m MAC) bytes() []byte { return m[:] }
