package realserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
)

// Defaults.
const (
	// DefaultStateDir is where the state file lives: /run is a tmpfs
	// emptied at boot, as is everything Setup changes (addresses and
	// sysctls do not survive a reboot either), so a stale record can
	// never outlive what it describes.
	DefaultStateDir = "/run/lvsd"
	// StateFile is the state file's name in the state directory.
	StateFile = "realserver.json"
	// DefaultTunName is Decap's TUN device.
	DefaultTunName = "lvstun0"
)

// maxIfName is the longest interface name Linux accepts: IFNAMSIZ (16)
// less the terminating NUL.
const maxIfName = 15

// Config is what a real server is set up for. The zero value of every
// field but VIPs means its default.
type Config struct {
	// VIPs are the virtual addresses the real server serves, IPv4 and/or
	// IPv6, each once (ParseVIPs builds a valid list). Teardown and
	// Status accept an empty list: every VIP of the state file.
	VIPs []netip.Addr
	// Tun sets up a TUN (IP-in-IP) real server: rp_filter relaxed and, on
	// a kernel that decapsulates, its tunnel devices up (IPv4 VIPs on
	// tunl0). Without it the host is set up for DR.
	Tun bool
	// StateDir holds the state file; default DefaultStateDir.
	StateDir string
	// TunName is the name of Decap's TUN device (Setup does not create it,
	// but Status looks for it); default DefaultTunName.
	TunName string
	// Logger receives what Teardown leaves alone and why; nil discards.
	Logger *slog.Logger

	// procSys replaces /proc/sys in tests.
	procSys string
}

func (c *Config) stateDir() string {
	if c.StateDir == "" {
		return DefaultStateDir
	}
	return c.StateDir
}

func (c *Config) statePath() string { return filepath.Join(c.stateDir(), StateFile) }

func (c *Config) tunName() string {
	if c.TunName == "" {
		return DefaultTunName
	}
	return c.TunName
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// Validate checks the VIPs (see CheckVIP, and no duplicates) and the TUN
// device name.
func (c *Config) Validate() error {
	seen := make(map[netip.Addr]bool, len(c.VIPs))
	for _, a := range c.VIPs {
		if err := CheckVIP(a); err != nil {
			return err
		}
		if seen[a] {
			return fmt.Errorf("VIP %v: given twice", a)
		}
		seen[a] = true
	}
	return CheckIfName(c.tunName())
}

// CheckIfName reports whether name can be a Linux interface name
// (dev_valid_name: 1 to 15 bytes, not "." or "..", no '/', ':' or
// white space).
func CheckIfName(name string) error {
	if name == "" || len(name) > maxIfName || name == "." || name == ".." ||
		strings.ContainsAny(name, "/: \t\n\v\f\r") {
		return fmt.Errorf("interface name %q: want 1 to %d characters, no '/', ':' or spaces", name, maxIfName)
	}
	return nil
}

// ErrBadVIP is wrapped by every error of CheckVIP and ParseVIPs.
var ErrBadVIP = errors.New("bad VIP")

// CheckVIP reports whether a can be a VIP: a unicast address that the
// host can own on lo. Rejected: the invalid and unspecified addresses,
// multicast and broadcast, loopback (127/8, ::1: lo has them already),
// link-local (an fe80:: VIP would need a zone and cannot be routed to a
// director), IPv4-mapped IPv6 (write the IPv4 form) and zoned addresses.
func CheckVIP(a netip.Addr) error {
	bad := func(why string) error { return fmt.Errorf("%w %v: %s", ErrBadVIP, a, why) }
	switch {
	case !a.IsValid():
		return fmt.Errorf("%w: no address", ErrBadVIP)
	case a.Zone() != "":
		return bad("an address with a zone cannot be a VIP")
	case a.Is4In6():
		return bad("IPv4-mapped IPv6 address: give the IPv4 form")
	case a.IsUnspecified():
		return bad("the unspecified address")
	case a.IsMulticast():
		return bad("a multicast address")
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return bad("the broadcast address")
	case a.IsLoopback():
		return bad("a loopback address (lo has it already)")
	case a.IsLinkLocalUnicast():
		return bad("a link-local address")
	}
	return nil
}

// ParseVIPs parses a comma-separated list of VIPs ("198.18.100.1,
// 2001:db8::100"). An entry may carry the host prefix length (/32 for
// IPv4, /128 for IPv6), as in "ip addr add"; any other length is an error,
// since a VIP is one address. Spaces around entries are ignored; empty
// entries and duplicates are errors.
func ParseVIPs(s string) ([]netip.Addr, error) {
	var vips []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, fmt.Errorf("%w: empty entry in %q", ErrBadVIP, s)
		}
		var a netip.Addr
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("%w %q: %v", ErrBadVIP, f, err)
			}
			if p.Bits() != p.Addr().BitLen() {
				return nil, fmt.Errorf("%w %q: a VIP is one address: /%d", ErrBadVIP, f, p.Addr().BitLen())
			}
			a = p.Addr()
		} else {
			var err error
			if a, err = netip.ParseAddr(f); err != nil {
				return nil, fmt.Errorf("%w %q: not an IP address", ErrBadVIP, f)
			}
		}
		if err := CheckVIP(a); err != nil {
			return nil, err
		}
		if seen[a] {
			return nil, fmt.Errorf("%w %v: given twice", ErrBadVIP, a)
		}
		seen[a] = true
		vips = append(vips, a)
	}
	return vips, nil
}
