package vrrpd

import (
	"context"
	"net"
	"net/netip"

	"golvs/internal/vrrp"
)

// netSys is the kernel side of the daemon: links, addresses, the advert
// sockets and the announcers of gratuitous ARPs and unsolicited neighbour
// adverts. The daemon's logic runs on top of it unchanged in the tests,
// which fake the wire (an in-memory LAN) rather than the daemon
// (style.md §6.4). Implementations are safe for concurrent use.
type netSys interface {
	// Link returns the interface called name.
	Link(name string) (linkInfo, error)
	// LinkOfAddr returns the interface that holds addr (an instance
	// with unicast peers and no interface: its unicast_src_ip's).
	LinkOfAddr(addr netip.Addr) (linkInfo, error)
	// PrimaryAddr returns the address of the interface an instance
	// speaks from: its first IPv4 address, or its first IPv6 link-local
	// address, skipping those skip reports (the VIPs, which a killed
	// master may have left there).
	PrimaryAddr(l linkInfo, fam vrrp.Family, skip func(netip.Addr) bool) (netip.Addr, error)
	// ListenAdverts opens the advert socket of one instance.
	ListenAdverts(s sockSpec) (advertConn, error)
	// AddAddr adds a virtual address; one already there is no error.
	AddAddr(v vipSpec) error
	// DelAddr removes a virtual address (its address and prefix
	// length, as the kernel matches them); one not there is no error.
	DelAddr(v vipSpec) error
	// HasAddr reports whether the virtual address (address and prefix
	// length) is on its interface.
	HasAddr(v vipSpec) (bool, error)
	// OpenAnnouncer opens the sender of gratuitous ARPs and unsolicited
	// neighbour adverts on interface l.
	OpenAnnouncer(l linkInfo) (announcer, error)
	// WatchLinks calls fn with the state of every interface, then
	// started, then fn with every change until ctx ends, when it returns
	// nil. If it cannot watch at all it returns the error before
	// calling started. fn and started run on the caller's goroutine.
	WatchLinks(ctx context.Context, fn func(name string, up bool), started func()) error
	// Close releases what the implementation holds.
	Close() error
}

// linkInfo is what the daemon needs of an interface.
type linkInfo struct {
	Name  string
	Index int
	MAC   net.HardwareAddr
	// Up: administratively up and running (IFF_UP and IFF_RUNNING,
	// keepalived's IF_FLAGS_UP: carrier and dormancy included).
	Up bool
}

// sockSpec describes one instance's advert socket.
type sockSpec struct {
	Family vrrp.Family
	Link   linkInfo
	// Local is the instance's address: the source of its adverts (the
	// checksum of VRRPv3 covers it); a unicast socket is bound to it.
	Local netip.Addr
	// Group is the multicast group to join; invalid for unicast.
	Group netip.Addr
	// TTL is the TTL / hop limit of unicast adverts (unicast_ttl);
	// multicast ones always carry 255.
	TTL int
}

// pktInfo is what the IP layer says about a received advert.
type pktInfo struct {
	Src, Dst netip.Addr
	TTL      int // TTL / hop limit
	IfIndex  int // the arrival interface; 0 when unknown
}

// advertConn is one instance's advert socket.
type advertConn interface {
	// Read reads one advert (the IP payload) into b. After Close it
	// returns an error wrapping net.ErrClosed.
	Read(b []byte) (n int, p pktInfo, err error)
	// Write sends one advert (the VRRP message) from src to dst.
	Write(b []byte, src, dst netip.Addr) error
	Close() error
}

// announcer sends the announcements of a new master on one interface.
type announcer interface {
	// Announce sends one gratuitous ARP (IPv4) or unsolicited neighbour
	// advert (IPv6) for addr.
	Announce(addr netip.Addr) error
	Close() error
}
