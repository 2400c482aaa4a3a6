package realserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Kernel tunnel devices: the fallback device each tunnel driver creates in
// every namespace, which receives the encapsulated packets no configured
// tunnel claims (ip_tunnel_lookup, ip6_tnl_lookup) once it is up.
const (
	devTunl0   = "tunl0"   // ipip
	devSit0    = "sit0"    // sit
	devIP6Tnl0 = "ip6tnl0" // ip6_tunnel
	devLo      = "lo"
)

// Result is what Setup found out about tunnels (TUN real servers only).
type Result struct {
	// Kernel are the encapsulations the kernel decapsulates itself: its
	// fallback device exists and is up.
	Kernel Encaps
	// User are the encapsulations the VIPs need that only a Decap can
	// receive: open one with these (DecapConfig.Encaps), or packets of
	// those kinds are lost (and answered with ICMP protocol unreachable).
	User Encaps
}

// Setup makes the host a real server for cfg.VIPs (see the package doc),
// recording every change in the state file first. It can be run again
// with more VIPs; what is already in place is left as it is. If a step
// fails, the changes of this call are undone before it returns. It must
// run as root (CAP_NET_ADMIN), in the network namespace of the calling
// thread.
func Setup(cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if len(cfg.VIPs) == 0 {
		return Result{}, errors.New("realserver setup: no VIP")
	}
	h, unlock, err := openHost(&cfg)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	if h.st == nil {
		h.st = &state{Version: stateVersion}
	}
	start, prevVIPs := len(h.st.Actions), slices.Clone(h.st.VIPs)
	res, err := h.setup()
	if err != nil {
		// Undo this call's changes, newest first, and put the record back.
		undoErr := h.undoAll(h.st.Actions[start:])
		h.st.Actions = h.st.Actions[:start]
		h.st.VIPs = prevVIPs
		if len(h.st.VIPs) == 0 && len(h.st.Actions) == 0 {
			undoErr = errors.Join(undoErr, removeState(h.path))
		} else {
			undoErr = errors.Join(undoErr, saveState(h.path, h.st))
		}
		if undoErr != nil {
			err = fmt.Errorf("%w (and undoing it: %w)", err, undoErr)
		}
		return Result{}, err
	}
	return res, nil
}

func (h *host) setup() (Result, error) {
	cfg := h.cfg
	lo, err := netlink.LinkByName(devLo)
	if err != nil {
		return Result{}, fmt.Errorf("find lo: %w", err)
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		return Result{}, errors.New("lo is down: bring it up first (ip link set lo up)")
	}
	need := EncapsFor(cfg.VIPs)
	if slices.ContainsFunc(cfg.VIPs, func(a netip.Addr) bool { return a.Is6() }) {
		if v, err := h.sys.get(ipv6Conf(devLo, "disable_ipv6")); err != nil || v == "1" {
			return Result{}, errors.New("IPv6 is disabled on lo (net.ipv6.conf.lo.disable_ipv6): an IPv6 VIP cannot be added")
		}
	}

	var res Result
	if cfg.Tun {
		h.st.Tun = true
		if res.Kernel, err = h.kernelTunnels(need); err != nil {
			return Result{}, err
		}
		res.User = need &^ res.Kernel
		if need&(IPIP|IPIP6) != 0 {
			if err := h.ensureSysctl(ipv4Conf("all", "rp_filter"), rpFilterRule); err != nil {
				return Result{}, err
			}
		}
	}
	// In the order of the scripts: lo, then all.
	for _, dev := range []string{devLo, "all"} {
		if err := h.ensureSysctl(ipv4Conf(dev, "arp_ignore"), arpIgnoreRule); err != nil {
			return Result{}, err
		}
		if err := h.ensureSysctl(ipv4Conf(dev, "arp_announce"), arpAnnounceRule); err != nil {
			return Result{}, err
		}
	}

	for _, a := range cfg.VIPs {
		dev := devLo
		if cfg.Tun && a.Is4() && res.Kernel&IPIP != 0 {
			dev = devTunl0 // as the LVS-TUN howto: ifconfig tunl0 VIP netmask 255.255.255.255 up
		}
		if err := h.setupVIP(a, dev); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// kernelTunnels brings up the kernel's fallback tunnel devices for the
// encapsulations in need, creating tunl0 if the ipip driver is there but
// its fallback device is not (net.core.fb_tunnels_only_for_init_net), and
// returns the encapsulations the kernel will decapsulate.
func (h *host) kernelTunnels(need Encaps) (Encaps, error) {
	var k Encaps
	if need&IPIP != 0 {
		if _, err := netlink.LinkByName(devTunl0); isNotFound(err) {
			// What "ip link add type ipip" does; without the driver the
			// kernel answers EOPNOTSUPP ("Unknown device type").
			err := h.do(action{Kind: actLinkAdd, Dev: devTunl0}, func() error {
				return netlink.LinkAdd(&netlink.Iptun{
					LinkAttrs: netlink.LinkAttrs{Name: devTunl0},
					Proto:     unix.IPPROTO_IPIP,
					PMtuDisc:  1, // as the kernel's own tunl0
				})
			})
			if err != nil {
				h.log.Debug("the kernel does not decapsulate IPv4-in-IPv4 (no ipip driver)", "err", err)
			}
		}
		ok, err := h.tunnelUp(devTunl0, true)
		if err != nil {
			return 0, err
		}
		if ok {
			k |= IPIP
		}
	}
	if need&SIT != 0 {
		ok, err := h.tunnelUp(devSit0, false)
		if err != nil {
			return 0, err
		}
		if ok {
			k |= SIT
		}
	}
	// Not IPv4-in-IPv6: ip6tnl0 is an ip6ip6 tunnel (ip6_fb_tnl_dev_init
	// sets proto IPPROTO_IPV6), so the kernel drops what ip4ip6_rcv finds
	// no tunnel for, and the raw socket's copy is the only one.
	if need&IP6IP6 != 0 {
		ok, err := h.tunnelUp(devIP6Tnl0, false)
		if err != nil {
			return 0, err
		}
		if ok {
			k |= IP6IP6
		}
	}
	return k, nil
}

// tunnelUp brings the tunnel device dev up if it exists, relaxing its
// rp_filter when it delivers IPv4, and reports whether it exists.
func (h *host) tunnelUp(dev string, inner4 bool) (bool, error) {
	l, err := netlink.LinkByName(dev)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("find %s: %w", dev, err)
	}
	if inner4 {
		if err := h.ensureSysctl(ipv4Conf(dev, "rp_filter"), rpFilterRule); err != nil {
			return false, err
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := h.do(action{Kind: actLinkUp, Dev: dev}, func() error { return netlink.LinkSetUp(l) }); err != nil {
			return false, fmt.Errorf("bring %s up: %w", dev, err)
		}
	}
	return true, nil
}

// setupVIP puts a on dev with a host prefix, and the IPv4 host route,
// unless they are there already.
func (h *host) setupVIP(a netip.Addr, dev string) error {
	links, err := addrLinks(a)
	if err != nil {
		return err
	}
	// Where it may be: lo, the device it goes on (tunl0), and Decap's
	// device, which holds the IPv4 VIPs while a decapsulator runs.
	where := ""
	for _, l := range links {
		switch l.Dev {
		case devLo, dev:
			where = l.Dev
		case h.cfg.tunName():
		default:
			return fmt.Errorf("VIP %v is on %s: a real server must not own the VIP on a network interface (it would answer ARP or ND for it and take the director's traffic); remove it there first", a, l.Dev)
		}
	}
	if where != "" {
		dev = where
	}
	if !h.st.hasVIP(a) {
		h.st.VIPs = append(h.st.VIPs, vipRecord{Addr: a, Dev: dev})
		if err := saveState(h.path, h.st); err != nil {
			return err
		}
	}
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("find %s: %w", dev, err)
	}
	host := netip.PrefixFrom(a, a.BitLen())
	if where == "" {
		add := action{Kind: actAddr, VIP: a, Dev: dev, Prefix: host}
		if err := h.do(add, func() error { return netlink.AddrAdd(link, netlinkAddr(host)) }); err != nil {
			return fmt.Errorf("add %v to %s: %w", host, dev, err)
		}
	}
	if !a.Is4() {
		return nil // no IPv6 host route: see the package doc
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{Dst: prefixIPNet(host), Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("list routes to %v: %w", host, err)
	}
	if len(routes) > 0 {
		return nil // somebody's route to the VIP: theirs
	}
	route := action{Kind: actRoute, VIP: a, Dev: dev, Prefix: host}
	if err := h.do(route, func() error { return netlink.RouteAdd(hostRoute(link, host)) }); err != nil {
		return fmt.Errorf("add route %v dev %s: %w", host, dev, err)
	}
	return nil
}

// Teardown undoes what Setup recorded in the state file: for the VIPs in
// cfg.VIPs, or all of them if it is empty; the host-wide changes
// (sysctls, tunnel devices) go with the last VIP, and so does the state
// file. A sysctl someone changed since Setup is left as it is (logged),
// as is anything that is already gone. Without a state file it returns an
// error wrapping ErrNoState. Failures do not stop it: everything that can
// be undone is, and what could not stays recorded for another attempt.
func Teardown(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	h, unlock, err := openHost(&cfg)
	if err != nil {
		return err
	}
	defer unlock()
	if h.st == nil {
		return fmt.Errorf("%w: %s does not exist", ErrNoState, h.path)
	}
	for _, a := range cfg.VIPs {
		if !h.st.hasVIP(a) {
			return fmt.Errorf("VIP %v was not set up with this state file (%s)", a, h.path)
		}
	}
	all := len(cfg.VIPs) == 0 || len(cfg.VIPs) == len(h.st.VIPs)
	var keep []action
	var errs []error
	// Newest first, so that an address goes before its device.
	for i := len(h.st.Actions) - 1; i >= 0; i-- {
		a := h.st.Actions[i]
		if !all && !(a.VIP.IsValid() && slices.Contains(cfg.VIPs, a.VIP)) {
			keep = append(keep, a)
			continue
		}
		if err := h.undo(a); err != nil {
			errs = append(errs, err)
			keep = append(keep, a)
		}
	}
	slices.Reverse(keep)
	h.st.Actions = keep
	if all {
		h.st.VIPs = nil
	} else {
		h.st.VIPs = slices.DeleteFunc(h.st.VIPs, func(v vipRecord) bool { return slices.Contains(cfg.VIPs, v.Addr) })
	}
	if len(h.st.VIPs) == 0 && len(h.st.Actions) == 0 {
		errs = append(errs, removeState(h.path))
	} else {
		errs = append(errs, saveState(h.path, h.st))
	}
	return errors.Join(errs...)
}

// host is one Setup or Teardown: the configuration, the state record and
// the state file it is saved to after every change.
type host struct {
	cfg  *Config
	sys  sysctls
	st   *state
	path string
	log  *slog.Logger
}

// openHost takes the state directory's lock and loads the state file.
// Two lvsd processes thus never edit the record at the same time.
func openHost(cfg *Config) (*host, func(), error) {
	dir := cfg.stateDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("state directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "realserver.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("state lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("state lock: %w", err)
	}
	unlock := func() { lock.Close() } // closing drops the flock
	h := &host{cfg: cfg, sys: sysctls{root: cfg.procSys}, path: cfg.statePath(), log: cfg.logger()}
	if h.st, err = loadState(h.path); err != nil {
		unlock()
		return nil, nil, err
	}
	return h, unlock, nil
}

// do records a in the state file, then applies it. If apply fails the
// record is dropped again; EEXIST means the thing was there already
// (someone raced us), which is no change of ours and no error.
func (h *host) do(a action, apply func() error) error {
	h.st.Actions = append(h.st.Actions, a)
	if err := saveState(h.path, h.st); err != nil {
		h.st.Actions = h.st.Actions[:len(h.st.Actions)-1]
		return err
	}
	err := apply()
	if err == nil {
		return nil
	}
	h.st.Actions = h.st.Actions[:len(h.st.Actions)-1]
	if serr := saveState(h.path, h.st); serr != nil {
		return errors.Join(err, serr)
	}
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

// ensureSysctl writes r.want to path unless its value is acceptable.
func (h *host) ensureSysctl(path string, r rule) error {
	cur, err := h.sys.get(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", sysctlName(path), err)
	}
	if r.ok(cur) {
		return nil
	}
	a := action{Kind: actSysctl, Path: path, Old: cur, New: r.want}
	if err := h.do(a, func() error { return h.sys.set(path, r.want) }); err != nil {
		return fmt.Errorf("set %s = %s: %w", sysctlName(path), r.want, err)
	}
	return nil
}

// undoAll undoes actions newest first and returns every failure.
func (h *host) undoAll(acts []action) error {
	var errs []error
	for i := len(acts) - 1; i >= 0; i-- {
		errs = append(errs, h.undo(acts[i]))
	}
	return errors.Join(errs...)
}

// undo reverts one action. What is already gone (the address, the route,
// the device) counts as undone.
func (h *host) undo(a action) error {
	switch a.Kind {
	case actSysctl:
		cur, err := h.sys.get(a.Path)
		if err != nil {
			if !h.sys.exists(a.Path) {
				return nil // its interface is gone
			}
			return fmt.Errorf("read %s: %w", sysctlName(a.Path), err)
		}
		if cur != a.New {
			h.log.Warn("sysctl changed since setup: left alone", "name", sysctlName(a.Path), "value", cur, "setup wrote", a.New, "before setup", a.Old)
			return nil
		}
		if err := h.sys.set(a.Path, a.Old); err != nil {
			return fmt.Errorf("restore %s = %s: %w", sysctlName(a.Path), a.Old, err)
		}
		return nil
	}
	link, err := netlink.LinkByName(a.Dev)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find %s: %w", a.Dev, err)
	}
	switch a.Kind {
	case actAddr:
		err = netlink.AddrDel(link, netlinkAddr(a.Prefix))
		if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) {
			err = nil
		}
		if err != nil {
			err = fmt.Errorf("remove %v from %s: %w", a.Prefix, a.Dev, err)
		}
	case actRoute:
		err = netlink.RouteDel(hostRoute(link, a.Prefix))
		if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) {
			err = nil
		}
		if err != nil {
			err = fmt.Errorf("remove route %v dev %s: %w", a.Prefix, a.Dev, err)
		}
	case actLinkUp:
		if err = netlink.LinkSetDown(link); err != nil {
			err = fmt.Errorf("bring %s down: %w", a.Dev, err)
		}
	case actLinkAdd:
		if err = netlink.LinkDel(link); err != nil {
			err = fmt.Errorf("delete %s: %w", a.Dev, err)
		}
	}
	return err
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// netlinkAddr is p as an interface address; IPv6 without duplicate
// address detection (lo does none anyway; tunnels would delay the VIP).
func netlinkAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: prefixIPNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// hostRoute is the scripts' "route add -host VIP dev DEV".
func hostRoute(link netlink.Link, p netip.Prefix) *netlink.Route {
	return &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       prefixIPNet(p),
		Scope:     netlink.SCOPE_LINK,
		Table:     unix.RT_TABLE_MAIN,
	}
}
