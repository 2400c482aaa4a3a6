package nstest

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"golvs/internal/checksum"
	"golvs/internal/header"
)

// Encapsulator is a minimal TUN-method director for tests: it captures
// the IPv4 packets for one VIP that arrive on one interface of its
// namespace (AF_PACKET), and sends each to the real server inside
// IPv4-in-IPv4 through a raw IPPROTO_IPIP socket, for which the kernel
// writes the outer header. The namespace needs a blackhole route for the
// VIP, so that its own stack neither answers nor forwards those packets.
//
// Packets a veth peer sent with checksum offload arrive with a partial
// transport checksum (PACKET_AUXDATA says TP_STATUS_CSUMNOTREADY). With
// Complete set the Encapsulator finishes them, as GoLVS's director does;
// without, it forwards them partial, as a director that ignores the flag
// would.
type Encapsulator struct {
	// Complete finishes partial checksums before encapsulating.
	Complete atomic.Bool
	// Sent counts encapsulated packets; Partial those that arrived with
	// a partial checksum; Completed those it finished.
	Sent, Partial, Completed atomic.Int64

	pkt, raw int
	vip, rs  [4]byte
	stop     atomic.Bool
	done     chan struct{}
	err      error // why the loop ended, read after done
	once     sync.Once
}

// pollInterval bounds how long Close waits for the capture loop: the
// AF_PACKET socket's receive timeout.
const pollInterval = 100 * time.Millisecond

// StartEncapsulator opens the sockets in ns and starts the loop; Close
// (registered with t.Cleanup) stops it.
func StartEncapsulator(t testing.TB, ns *NS, ifName string, vip, rs netip.Addr) *Encapsulator {
	t.Helper()
	e := &Encapsulator{pkt: -1, raw: -1, vip: vip.As4(), rs: rs.As4(), done: make(chan struct{})}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifName)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_IP))
		if e.pkt, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto); err != nil {
			return err
		}
		if err := unix.Bind(e.pkt, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifi.Index}); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(e.pkt, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return err
		}
		tv := unix.NsecToTimeval(pollInterval.Nanoseconds())
		if err := unix.SetsockoptTimeval(e.pkt, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		e.raw, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_IPIP)
		return err
	})
	if err != nil {
		e.closeFDs()
		t.Fatalf("encapsulator in %s: %v", ns.Name, err)
	}
	go e.loop()
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("encapsulator: %v", err)
		}
	})
	return e
}

// Close stops the loop and returns why it had stopped, if not asked to.
func (e *Encapsulator) Close() error {
	e.once.Do(func() {
		e.stop.Store(true)
		<-e.done
		e.closeFDs()
	})
	return e.err
}

func (e *Encapsulator) closeFDs() {
	for _, fd := range []int{e.pkt, e.raw} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

func (e *Encapsulator) loop() {
	defer close(e.done)
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for !e.stop.Load() {
		n, oobn, _, from, err := unix.Recvmsg(e.pkt, buf, oob, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			e.err = err
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		p := buf[:n]
		h := header.IPv4(p)
		if !h.IsValid(n) || h.DestinationAddress() != e.vip {
			continue
		}
		p = p[:h.TotalLength()]
		if partial(oob[:oobn]) {
			e.Partial.Add(1)
			if e.Complete.Load() && finish(p) {
				e.Completed.Add(1)
			}
		}
		if err := unix.Sendto(e.raw, p, 0, &unix.SockaddrInet4{Addr: e.rs}); err != nil {
			e.err = err
			return
		}
		e.Sent.Add(1)
	}
}

// partial reports whether the control messages say the checksum is not
// finished (TP_STATUS_CSUMNOTREADY in PACKET_AUXDATA).
func partial(oob []byte) bool {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA &&
			len(m.Data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
			return aux.Status&unix.TP_STATUS_CSUMNOTREADY != 0
		}
	}
	return false
}

// finish computes p's TCP or UDP checksum from scratch.
func finish(p []byte) bool {
	h := header.IPv4(p)
	if h.IsFragment() {
		return false
	}
	seg := p[h.HeaderLength():]
	var off int
	switch h.Protocol() {
	case header.ProtoTCP:
		off = 16
	case header.ProtoUDP:
		off = 6
	default:
		return false
	}
	if len(seg) < off+2 {
		return false
	}
	binary.BigEndian.PutUint16(seg[off:], 0)
	c := ^checksum.Sum(seg, h.PseudoHeaderSum())
	if h.Protocol() == header.ProtoUDP {
		c = checksum.ForUDP(c)
	}
	binary.BigEndian.PutUint16(seg[off:], c)
	return true
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Snapshot is what a real server's set-up may change in ns, as ip(8) and
// /proc/sys show it, for before/after comparisons: interface names,
// addresses, routes of every table and the ARP and reverse-path sysctls.
// What the kernel does on its own schedule after an interface comes up
// (carrier, IPv6 link-local addresses finishing DAD and their routes) is
// left out, so that two snapshots differ only by what was done to ns.
func Snapshot(t testing.TB, ns *NS) string {
	t.Helper()
	var b strings.Builder
	for _, l := range lines(ns.IP(t, "-o", "link", "show")) {
		if f := strings.Fields(l); len(f) > 1 {
			b.WriteString("link " + strings.TrimSuffix(f[1], ":") + "\n")
		}
	}
	for _, l := range lines(ns.IP(t, "-o", "addr", "show")) {
		if f := strings.Fields(l); len(f) > 3 && !strings.HasPrefix(f[3], "fe80:") {
			b.WriteString("addr " + f[1] + " " + f[2] + " " + f[3] + "\n")
		}
	}
	for _, fam := range []string{"-4", "-6"} {
		for _, l := range lines(ns.IP(t, fam, "route", "show", "table", "all")) {
			if !strings.Contains(l, "fe80:") {
				b.WriteString("route " + l + "\n")
			}
		}
	}
	for _, dev := range []string{"all", "default", "lo"} {
		for _, name := range []string{"arp_ignore", "arp_announce", "rp_filter"} {
			p := "net/ipv4/conf/" + dev + "/" + name
			b.WriteString(p + "=" + ns.ReadSysctl(t, p) + "\n")
		}
	}
	return b.String()
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
