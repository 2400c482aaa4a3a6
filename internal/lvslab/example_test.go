package lvslab_test

import (
	"fmt"
	"net/netip"
	"os"

	"golvs/internal/lvslab"
)

// A client fetches a name from a server on the same segment; the trace
// shows every frame.
func Example() {
	n := lvslab.New(lvslab.Config{Seed: 1, Trace: os.Stdout})
	lan := n.NewSegment("lan")
	client := n.NewHost("client", lvslab.HostConfig{})
	client.AddInterface(lan, "eth0", netip.MustParsePrefix("192.0.2.10/24"))
	server := n.NewHost("server", lvslab.HostConfig{})
	server.AddInterface(lan, "eth0", netip.MustParsePrefix("192.0.2.20/24"))
	server.ListenTCP(netip.MustParseAddrPort("192.0.2.20:80"), lvslab.ReplyAndClose([]byte("server")))

	c, _ := client.DialTCP(netip.AddrPort{}, netip.MustParseAddrPort("192.0.2.20:80"), nil)
	n.Drain()
	c.Write([]byte("GET /\n"))
	n.Drain()
	c.Close()
	n.Drain()
	fmt.Printf("%s %q\n", c.State(), c.Received())
	// Output:
	//    0.000000 lan client/eth0: 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff ARP who-has 192.0.2.20 tell 192.0.2.10
	//    0.000000 lan server/eth0: 02:00:00:00:00:02 > 02:00:00:00:00:01 ARP 192.0.2.20 is-at 02:00:00:00:00:02
	//    0.000000 lan client/eth0: 02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 192.0.2.10:39505 > 192.0.2.20:80 TCP [S] seq=3487762290 win=65535 mss=1460 len=0
	//    0.000000 lan server/eth0: 02:00:00:00:00:02 > 02:00:00:00:00:01 IPv4 192.0.2.20:80 > 192.0.2.10:39505 TCP [S.] seq=29027502 ack=3487762291 win=65535 mss=1460 len=0
	//    0.000000 lan client/eth0: 02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 192.0.2.10:39505 > 192.0.2.20:80 TCP [.] seq=3487762291 ack=29027503 win=65535 len=0
	//    0.000000 lan client/eth0: 02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 192.0.2.10:39505 > 192.0.2.20:80 TCP [P.] seq=3487762291 ack=29027503 win=65535 len=6
	//    0.000000 lan server/eth0: 02:00:00:00:00:02 > 02:00:00:00:00:01 IPv4 192.0.2.20:80 > 192.0.2.10:39505 TCP [P.] seq=29027503 ack=3487762297 win=65535 len=6
	//    0.000000 lan server/eth0: 02:00:00:00:00:02 > 02:00:00:00:00:01 IPv4 192.0.2.20:80 > 192.0.2.10:39505 TCP [F.] seq=29027509 ack=3487762297 win=65535 len=0
	//    0.000000 lan client/eth0: 02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 192.0.2.10:39505 > 192.0.2.20:80 TCP [.] seq=3487762297 ack=29027509 win=65535 len=0
	//    0.000000 lan client/eth0: 02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 192.0.2.10:39505 > 192.0.2.20:80 TCP [.] seq=3487762297 ack=29027510 win=65535 len=0
	//    0.000000 lan client/eth0: 02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 192.0.2.10:39505 > 192.0.2.20:80 TCP [F.] seq=3487762297 ack=29027510 win=65535 len=0
	//    0.000000 lan server/eth0: 02:00:00:00:00:02 > 02:00:00:00:00:01 IPv4 192.0.2.20:80 > 192.0.2.10:39505 TCP [.] seq=29027510 ack=3487762298 win=65535 len=0
	// CLOSED "server"
}

// The director under test attaches to a Host: its ingress hook takes the
// frames for the service, Resolve finds the real server's MAC, Transmit
// sends the rewritten frame. Everything else (ARP for the VIP, ...) goes to
// the host's own stack. Here, a one-server LVS-DR director.
func ExampleHost_SetIngressHook() {
	n := lvslab.New(lvslab.Config{Seed: 1})
	lan := n.NewSegment("lan")
	vip := netip.MustParseAddr("192.0.2.100")
	rip := netip.MustParseAddr("192.0.2.21")

	client := n.NewHost("client", lvslab.HostConfig{})
	client.AddInterface(lan, "eth0", netip.MustParsePrefix("192.0.2.10/24"))
	rs := n.NewHost("rs", lvslab.HostConfig{})
	rs.AddInterface(lan, "eth0", netip.PrefixFrom(rip, 24))
	rs.Loopback().AddAddr(netip.PrefixFrom(vip, 32)) // never ARPed for
	rs.ListenTCP(netip.AddrPortFrom(vip, 80), lvslab.ReplyAndClose([]byte("rs")))

	dir := n.NewHost("director", lvslab.HostConfig{})
	eth0 := dir.AddInterface(lan, "eth0", netip.MustParsePrefix("192.0.2.1/24"), netip.PrefixFrom(vip, 32))
	dir.SetIngressHook(func(ifindex int, frame []byte) bool {
		// IPv4 to the VIP: rewrite the MACs towards the real server.
		if len(frame) < 34 || frame[12] != 0x08 || frame[13] != 0x00 || netip.AddrFrom4([4]byte(frame[30:34])) != vip {
			return false
		}
		dir.Resolve(ifindex, rip, func(mac lvslab.MAC, ok bool) {
			if ok {
				src := eth0.MAC()
				copy(frame[0:6], mac[:])
				copy(frame[6:12], src[:])
				dir.Transmit(ifindex, frame)
			}
		})
		return true
	})

	c, _ := client.DialTCP(netip.AddrPort{}, netip.AddrPortFrom(vip, 80), nil)
	n.Drain()
	c.Write([]byte("hi"))
	n.Drain()
	fmt.Printf("%q from the VIP; director consumed %d frames; rs %v\n",
		c.Received(), dir.Counters().HookConsumed, rs.Counters().Corrupt() == 0)
	// Output: "rs" from the VIP; director consumed 5 frames; rs true
}
