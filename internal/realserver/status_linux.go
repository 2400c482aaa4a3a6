package realserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Status reports the real-server configuration of the host: each VIP (of
// cfg, or of the state file when cfg has none), the sysctls, and for TUN
// the decapsulation. It changes nothing, takes no lock and needs no
// privilege.
func Status(cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Report{StatePath: cfg.statePath(), Tun: cfg.Tun, TunName: cfg.tunName()}
	st, err := loadState(s.StatePath)
	if err != nil {
		return nil, err
	}
	vips := cfg.VIPs
	if st != nil {
		s.State = true
		s.Tun = s.Tun || st.Tun
		if len(vips) == 0 {
			for _, v := range st.VIPs {
				vips = append(vips, v.Addr)
			}
		}
	}
	s.Need = EncapsFor(vips)
	sys := sysctls{root: cfg.procSys}

	if s.Tun {
		for _, t := range []struct {
			dev string
			e   Encaps
		}{{devTunl0, IPIP}, {devSit0, SIT}, {devIP6Tnl0, IP6IP6}} {
			if linkUp(t.dev) {
				s.Kernel |= t.e & s.Need
			}
		}
		s.TunUp = linkUp(s.TunName)
	}

	for _, a := range vips {
		v := VIPStatus{Addr: a}
		links, err := addrLinks(a)
		if err != nil {
			return nil, err
		}
		// Report where it should be (lo, tunl0) if it is there, else
		// where it is: on a wire interface it is wrong.
		for _, l := range links {
			if l.Dev == devLo || l.Dev == devTunl0 {
				v.Dev, v.Prefix = l.Dev, l.Prefix
				v.OK = l.Prefix.Bits() == a.BitLen()
				break
			}
			if v.Dev == "" && l.Dev != s.TunName {
				v.Dev, v.Prefix = l.Dev, l.Prefix
			}
		}
		if a.Is4() {
			routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4,
				&netlink.Route{Dst: prefixIPNet(netip.PrefixFrom(a, 32)), Table: unix.RT_TABLE_MAIN},
				netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
			if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
				return nil, fmt.Errorf("list routes: %w", err)
			}
			v.Route = len(routes) > 0
		}
		s.VIPs = append(s.VIPs, v)
	}

	add := func(path string, r rule) {
		c := SysctlStatus{Name: sysctlName(path), Want: r.describe()}
		if v, err := sys.get(path); err == nil {
			c.Value, c.OK = v, r.ok(v)
		}
		s.Sysctls = append(s.Sysctls, c)
	}
	for _, dev := range []string{devLo, "all"} {
		add(ipv4Conf(dev, "arp_ignore"), arpIgnoreRule)
		add(ipv4Conf(dev, "arp_announce"), arpAnnounceRule)
	}
	if s.Tun && s.Need&(IPIP|IPIP6) != 0 {
		add(ipv4Conf("all", "rp_filter"), rpFilterRule)
		for _, dev := range []string{devTunl0, s.TunName} {
			if linkUp(dev) {
				add(ipv4Conf(dev, "rp_filter"), rpFilterRule)
			}
		}
	}
	return s, nil
}

// linkUp reports whether the interface exists and is up.
func linkUp(name string) bool {
	l, err := netlink.LinkByName(name)
	return err == nil && l.Attrs().Flags&net.FlagUp != 0
}

// addrLink is one interface holding an address.
type addrLink struct {
	Dev    string
	Prefix netip.Prefix
}

// addrLinks returns every interface that has a, in interface order.
func addrLinks(a netip.Addr) ([]addrLink, error) {
	family := netlink.FAMILY_V4
	if a.Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(nil, family)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []addrLink
	for _, x := range addrs {
		ip, ok := netip.AddrFromSlice(x.IP)
		if !ok || ip.Unmap() != a {
			continue
		}
		ones, _ := x.Mask.Size()
		l, err := netlink.LinkByIndex(x.LinkIndex)
		if err != nil {
			return nil, fmt.Errorf("find interface %d: %w", x.LinkIndex, err)
		}
		out = append(out, addrLink{Dev: l.Attrs().Name, Prefix: netip.PrefixFrom(a, ones)})
	}
	return out, nil
}
