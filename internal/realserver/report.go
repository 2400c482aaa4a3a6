package realserver

import (
	"fmt"
	"io"
	"net/netip"
)

// Report is what Status found.
type Report struct {
	// StatePath is the state file looked at; State whether it exists.
	StatePath string
	State     bool
	// Tun is whether a TUN real server was asked for (Config.Tun) or set
	// up (the state file says so).
	Tun bool
	// VIPs are the VIPs asked for, or those of the state file.
	VIPs []VIPStatus
	// Sysctls are the parameters a real server needs.
	Sysctls []SysctlStatus
	// Kernel are the encapsulations the kernel decapsulates (its tunnel
	// device exists and is up), for the VIPs' families.
	Kernel Encaps
	// Need are the encapsulations the VIPs need.
	Need Encaps
	// TunName is Decap's device and TunUp whether it exists and is up,
	// that is whether a decapsulator runs.
	TunName string
	TunUp   bool
}

// VIPStatus is one VIP.
type VIPStatus struct {
	Addr netip.Addr
	// Dev is the interface the address is on, "" if on none; Prefix its
	// prefix there.
	Dev    string
	Prefix netip.Prefix
	// Route is whether a main-table route to the VIP exists (IPv4).
	Route bool
	// OK: on lo (or tunl0) with a host prefix. Anywhere else, or with a
	// shorter prefix (which on lo makes the whole subnet local), is not.
	OK bool
}

// SysctlStatus is one kernel parameter.
type SysctlStatus struct {
	Name  string // dotted, as sysctl(8): net.ipv4.conf.all.arp_ignore
	Value string // "" if it could not be read
	Want  string // the acceptable values: "1, 2 or 8"
	OK    bool
}

// Configured reports whether everything a real server needs is in place:
// every VIP, every sysctl, and with TUN a decapsulator for every
// encapsulation (the kernel's, or Decap's device up). A status with no
// VIPs is not configured.
func (s *Report) Configured() bool {
	if len(s.VIPs) == 0 {
		return false
	}
	for _, v := range s.VIPs {
		if !v.OK {
			return false
		}
	}
	for _, c := range s.Sysctls {
		if !c.OK {
			return false
		}
	}
	if s.Tun && s.Need&^s.Kernel != 0 && !s.TunUp {
		return false
	}
	return true
}

// Write prints s for people, one fact a line.
func (s *Report) Write(w io.Writer) error {
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	okText := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "NOT OK"
	}
	for _, v := range s.VIPs {
		switch {
		case v.Dev == "":
			p("VIP %v: absent: NOT OK\n", v.Addr)
		default:
			p("VIP %v: %v on %s: %s\n", v.Addr, v.Prefix, v.Dev, okText(v.OK))
		}
		if v.Addr.Is4() {
			route := "absent"
			if v.Route {
				route = "present"
			}
			p("VIP %v: host route: %s\n", v.Addr, route)
		}
	}
	for _, c := range s.Sysctls {
		v := c.Value
		if v == "" {
			v = "(unreadable)"
		}
		p("%s = %s (want %s): %s\n", c.Name, v, c.Want, okText(c.OK))
	}
	if s.Tun {
		if k := s.Kernel & s.Need; k != 0 {
			p("tunnel: the kernel decapsulates %v\n", k)
		}
		if u := s.Need &^ s.Kernel; u != 0 {
			running := "not running (no " + s.TunName + ")"
			if s.TunUp {
				running = "running on " + s.TunName
			}
			p("tunnel: user-space decapsulation of %v: %s: %s\n", u, running, okText(s.TunUp))
		}
	}
	state := "none"
	if s.State {
		state = "present"
	}
	p("state file %s: %s\n", s.StatePath, state)
	conf := "not configured"
	if s.Configured() {
		conf = "configured"
	}
	p("realserver: %s\n", conf)
	return err
}
