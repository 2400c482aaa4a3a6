package nslab

import (
	"fmt"
	"net/netip"
	"strings"

	"golvs/internal/service"
)

// Addresses of the lab: 198.18.0.0/15 only (RFC 2544's benchmarking
// range, which no real network uses), so the lab never sends a packet to
// anything but itself.
var (
	// FrontNet is the client side: the client, the directors' eth0, the
	// VIPs.
	FrontNet = netip.MustParsePrefix("198.18.0.0/24")
	// LANNet is the servers' LAN: the directors' eth1, the real servers.
	LANNet = netip.MustParsePrefix("198.18.1.0/24")

	ClientAddr = netip.MustParseAddr("198.18.0.1")
	// VIP1 carries the NAT services (HTTP and the UDP echo), VIP2 the DR
	// service, VIP3 the TUN service.
	VIP1 = netip.MustParseAddr("198.18.0.101")
	VIP2 = netip.MustParseAddr("198.18.0.102")
	VIP3 = netip.MustParseAddr("198.18.0.103")
	// GatewayVIP is the NAT real servers' route to the client network:
	// a VRRP address on the LAN, so it moves with the VIPs.
	GatewayVIP = netip.MustParseAddr("198.18.1.1")
	// RouterFront and RouterLAN are the switch namespace's router, the
	// way DR and TUN replies take to the client.
	RouterFront = netip.MustParseAddr("198.18.0.254")
	RouterLAN   = netip.MustParseAddr("198.18.1.254")
)

// directRepliesTable is the routing table (on the real servers) of
// replies sent from the DR and TUN VIPs: through the router, not the
// directors. 100 is any table number the system does not use (253-255
// are default, main and local).
const directRepliesTable = "100"

// Ports.
const (
	httpPort   = 80   // the virtual HTTP port; DR and TUN real servers serve it too
	natRSPort  = 8080 // the NAT real servers' HTTP port (NAT maps the port)
	udpPort    = 53   // the UDP echo, on the VIP and the real servers
	statusPort = 9600 // lvsd --http inside a director's namespace (loopback)
	// DefaultHTTPPort is the host's 127.0.0.1 port of the status page
	// (the active director); the next two ports are director1's and
	// director2's. Any port free on most machines would do.
	DefaultHTTPPort = 9650
)

// Roles of the namespaces (their names are PREFIX-ROLE).
const (
	roleClient = "client"
	roleSwitch = "switch"
)

// directorRole and rsRole name the numbered roles (from 1).
func directorRole(i int) string { return fmt.Sprintf("director%d", i) }
func rsRole(i int) string       { return fmt.Sprintf("rs%d", i) }

// numRS is the number of real servers, numDirectors of directors.
const (
	numRS        = 3
	numDirectors = 2
)

// DirectorFront and DirectorLAN are director i's (from 1) addresses.
func DirectorFront(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(1 + i)}) }
func DirectorLAN(i int) netip.Addr   { return netip.AddrFrom4([4]byte{198, 18, 1, byte(1 + i)}) }

// RSAddr is real server i's (from 1) address.
func RSAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}) }

// roles lists every namespace role of a lab, the switch last (so that
// the others' veth ends vanish before it, when deleted in order).
func roles() []string {
	r := []string{roleClient}
	for i := 1; i <= numDirectors; i++ {
		r = append(r, directorRole(i))
	}
	for i := 1; i <= numRS; i++ {
		r = append(r, rsRole(i))
	}
	return append(r, roleSwitch)
}

// nsName is the namespace of role in the lab with prefix.
func nsName(prefix, role string) string { return prefix + "-" + role }

// Service is one of the lab's virtual services.
type Service struct {
	Name   string // NAT, DR, TUN, UDP: what the user types (any case)
	Proto  string // "tcp" or "udp"
	VIP    netip.Addr
	Port   uint16
	RSPort uint16
	Method string // keepalived's lvs_method
	Flag   string // ipvsadm's forwarding flag
	Sched  string
}

// VAddr is the service's VIP:port.
func (s Service) VAddr() netip.AddrPort { return netip.AddrPortFrom(s.VIP, s.Port) }

// protoNum is the service's IP protocol number.
func (s Service) protoNum() uint8 {
	if s.Proto == "udp" {
		return service.ProtoUDP
	}
	return service.ProtoTCP
}

// ipvsadmProto is ipvsadm's -t or -u.
func (s Service) ipvsadmProto() string {
	if s.Proto == "udp" {
		return "-u"
	}
	return "-t"
}

// Services are the lab's virtual services, in display order. The
// schedulers differ so that the lab shows several: wrr and wlc honour
// the weights `lvslab weight` sets; rr spreads the echoes evenly.
var Services = []Service{
	{Name: "NAT", Proto: "tcp", VIP: VIP1, Port: httpPort, RSPort: natRSPort, Method: "NAT", Flag: "-m", Sched: "wrr"},
	{Name: "DR", Proto: "tcp", VIP: VIP2, Port: httpPort, RSPort: httpPort, Method: "DR", Flag: "-g", Sched: "wlc"},
	{Name: "TUN", Proto: "tcp", VIP: VIP3, Port: httpPort, RSPort: httpPort, Method: "TUN", Flag: "-i", Sched: "wrr"},
	{Name: "UDP", Proto: "udp", VIP: VIP1, Port: udpPort, RSPort: udpPort, Method: "NAT", Flag: "-m", Sched: "rr"},
}

// serviceByName finds a service by name (any case) or VIP:port.
func serviceByName(s string) (Service, bool) {
	for _, svc := range Services {
		if strings.EqualFold(s, svc.Name) || s == svc.VAddr().String() {
			return svc, true
		}
	}
	return Service{}, false
}

// vrrpAddrs are the addresses the VRRP master holds, with their
// interfaces.
var vrrpAddrs = []struct {
	Addr netip.Addr
	Dev  string
}{
	{VIP1, "eth0"}, {VIP2, "eth0"}, {VIP3, "eth0"}, {GatewayVIP, "eth1"},
}
