package realserver

import (
	"net/netip"
	"strings"
)

// Encaps is a set of IP-in-IP encapsulations, named outer-family first as
// the kernel's tunnel drivers are.
type Encaps uint8

// The encapsulations a TUN real server may receive (IPVS's TUN method with
// --tun-type ipip, the default; GUE and GRE are not decapsulated here).
const (
	// IPIP is IPv4 in IPv4: outer protocol 4 (RFC 2003; the kernel's
	// ipip, device tunl0).
	IPIP Encaps = 1 << iota
	// SIT is IPv6 in IPv4: outer protocol 41 (RFC 4213; the kernel's sit,
	// device sit0). IPVS uses it for an IPv6 service with an IPv4 real
	// server.
	SIT
	// IP6IP6 is IPv6 in IPv6: outer next header 41 (RFC 2473; the
	// kernel's ip6_tunnel, device ip6tnl0).
	IP6IP6
	// IPIP6 is IPv4 in IPv6: outer next header 4 (RFC 2473; ip6_tunnel,
	// ip6tnl0). IPVS uses it for an IPv4 service with an IPv6 real server.
	IPIP6

	allEncaps = IPIP | SIT | IP6IP6 | IPIP6
)

var encapNames = [...]struct {
	e    Encaps
	name string
}{
	{IPIP, "ipip"},
	{SIT, "sit"},
	{IP6IP6, "ip6ip6"},
	{IPIP6, "ipip6"},
}

// String lists the members, "ipip,ip6ip6", or "none".
func (s Encaps) String() string {
	var names []string
	for _, n := range encapNames {
		if s&n.e != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// outer6 reports whether e (one encapsulation) has an IPv6 outer header.
func (e Encaps) outer6() bool { return e&(IP6IP6|IPIP6) != 0 }

// inner6 reports whether e (one encapsulation) carries IPv6.
func (e Encaps) inner6() bool { return e&(SIT|IP6IP6) != 0 }

// proto is the outer protocol / next header of e (one encapsulation).
func (e Encaps) proto() uint8 {
	if e.inner6() {
		return 41 // IPPROTO_IPV6
	}
	return 4 // IPPROTO_IPIP
}

// EncapsFor returns the encapsulations that can carry packets for vips:
// both outer families for each inner family present (IPVS allows a real
// server of the other family with TUN).
func EncapsFor(vips []netip.Addr) Encaps {
	var s Encaps
	for _, a := range vips {
		if a.Is4() {
			s |= IPIP | IPIP6
		} else {
			s |= IP6IP6 | SIT
		}
	}
	return s
}
