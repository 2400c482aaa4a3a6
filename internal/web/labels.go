package web

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golvs/internal/service"
)

// Labels and names shared by the metrics and the status page, so that a
// service or a real server is spelled the same in both.

// serviceName is a service as ipvsadm -Ln names it, with single spaces:
// "TCP 198.18.0.10:80", "UDP [2001:db8::1]:53", "FWM 1", "FWM 1 IPv6".
func serviceName(k service.Key) string {
	if k.IsFWMark() {
		s := "FWM " + strconv.FormatUint(uint64(k.FWMark), 10)
		if k.Family == service.IPv6 {
			s += " IPv6"
		}
		return s
	}
	return strings.ToUpper(protoName(k.Proto)) + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// protoName is the protocol label: "tcp", "udp", "sctp"; "" for fwmark
// services, which have none.
func protoName(p uint8) string {
	switch p {
	case 0:
		return ""
	case service.ProtoTCP:
		return "tcp"
	case service.ProtoUDP:
		return "udp"
	case service.ProtoSCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// serverName is a real server as "198.19.0.1:80" or "[2001:db8::1]:80".
func serverName(a netip.Addr, port uint16) string {
	return netip.AddrPortFrom(a, port).String()
}

// methodName is the forwarding method as ipvsadm's Forward column prints
// it, in lower case: "masq", "route", "tunnel", "local", "bypass".
func methodName(m service.FwdMethod) string { return strings.ToLower(m.String()) }

// serviceLabelValues are the values of svcLabelNames for k.
func serviceLabelValues(k service.Key, sched string) []string {
	v := []string{serviceName(k), protoName(k.Proto), "", "", "", schedName(sched)}
	if k.IsFWMark() {
		v[4] = strconv.FormatUint(uint64(k.FWMark), 10)
	} else {
		v[2] = k.Addr.String()
		v[3] = strconv.FormatUint(uint64(k.Port), 10)
	}
	return v
}

// schedName is the scheduler the kernel reports: "none" without one.
func schedName(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// normKey is the identity of a service as the kernel compares them:
// fwmark services by (family, mark), others by (family, protocol,
// address, port). Providers (health checkers built from keepalived.conf)
// may fill keys less carefully than control does.
func normKey(k service.Key) service.Key {
	if k.FWMark != 0 {
		f := k.Family
		if f != service.IPv6 {
			f = service.IPv4
		}
		return service.Key{Family: f, FWMark: k.FWMark}
	}
	a := k.Addr.Unmap()
	return service.Key{Family: service.FamilyOf(a), Proto: k.Proto, Addr: a, Port: k.Port}
}

// serviceFlags are the words ipvsadm -Ln prints after the scheduler:
// scheduler flags, "persistent N", "mask M", "pe NAME", "ops".
func serviceFlags(k service.Key, c service.Config) []string {
	var out []string
	switch c.Sched {
	case "sh", "mh":
		if c.Flags&service.FlagSched1 != 0 {
			out = append(out, c.Sched+"-fallback")
		}
		if c.Flags&service.FlagSched2 != 0 {
			out = append(out, c.Sched+"-port")
		}
	default:
		for i, f := range []service.Flags{service.FlagSched1, service.FlagSched2, service.FlagSched3} {
			if c.Flags&f != 0 {
				out = append(out, "flag-"+strconv.Itoa(i+1))
			}
		}
	}
	if c.Persistent() {
		out = append(out, "persistent "+strconv.FormatUint(uint64(c.Timeout), 10))
		if k.Family == service.IPv6 {
			if c.Netmask != 128 {
				out = append(out, "mask "+strconv.FormatUint(uint64(c.Netmask), 10))
			}
		} else if m := c.Netmask; m != 0xffffffff {
			out = append(out, "mask "+netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String())
		}
		if c.PE != "" {
			out = append(out, "pe "+c.PE)
		}
	}
	if c.Flags&service.FlagOnePacket != 0 {
		out = append(out, "ops")
	}
	return out
}

// sortedServices returns svcs in ipvsadm -Ln's order: services by
// address family, protocol, address and port, then firewall-mark services
// by mark.
func sortedServices(svcs []*service.Service) []*service.Service {
	out := slices.Clone(svcs)
	slices.SortStableFunc(out, func(a, b *service.Service) int {
		return cmpKey(a.Key, b.Key)
	})
	return out
}

func cmpKey(a, b service.Key) int {
	if a.IsFWMark() != b.IsFWMark() {
		if a.IsFWMark() {
			return 1
		}
		return -1
	}
	return cmp.Or(
		cmp.Compare(a.FWMark, b.FWMark),
		cmp.Compare(a.Family, b.Family),
		cmp.Compare(a.Proto, b.Proto),
		a.Addr.Compare(b.Addr),
		cmp.Compare(a.Port, b.Port),
	)
}

// sortedDests returns ds by address and port, as ipvsadm -Ln lists them.
func sortedDests(ds []*service.Dest) []*service.Dest {
	out := slices.Clone(ds)
	slices.SortStableFunc(out, func(a, b *service.Dest) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
	})
	return out
}
