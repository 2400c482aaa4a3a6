package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Host is the kernel side of one network namespace: an rtnetlink handle
// and the namespace itself, so that sockets and subscriptions opened
// through it live there. Safe for concurrent use.
type Host struct {
	ns netns.NsHandle // netns.None() for the caller's namespace; borrowed
	nl *netlink.Handle
}

// Open returns a Host for namespace ns, or for the namespace of the
// calling thread when ns is netns.None(). The Host borrows ns: keep it
// open until Close.
func Open(ns netns.NsHandle) (*Host, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("hostnet: rtnetlink handle: %w", err)
	}
	return &Host{ns: ns, nl: h}, nil
}

// Close releases the rtnetlink handle. Watchers and ingress tables opened
// through h must be closed first.
func (h *Host) Close() error {
	h.nl.Close()
	return nil
}

// nsOption returns the namespace option of the netlink subscriptions.
func (h *Host) nsOption() *netns.NsHandle {
	if !h.ns.IsOpen() {
		return nil
	}
	ns := h.ns
	return &ns
}

// do runs fn on a thread that has entered h's namespace (socket(2) creates
// a socket in the namespace of the calling thread; the socket stays there).
func (h *Host) do(fn func() error) error {
	if !h.ns.IsOpen() {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("hostnet: current namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(h.ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("hostnet: enter namespace: %w", err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread is stuck in the other namespace: keep it locked
		// so that the runtime retires it with the goroutine.
		return errors.Join(ferr, fmt.Errorf("hostnet: restore namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// vipBits returns the host prefix length of a's family: a VIP is a single
// address, /32 or /128, as keepalived and the LVS how-tos add it.
func vipBits(a netip.Addr) int {
	if a.Is4() {
		return 32
	}
	return 128
}

// addrOf converts a netip address to the netlink library's form.
func addrOf(a netip.Addr, bits int) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}}
}

// AddVIP puts vip on interface ifname as a /32 (/128), as `ip addr add
// VIP/32 dev IF label LABEL` does; IPv6 VIPs skip duplicate address
// detection (IFA_F_NODAD, like keepalived) so that they are usable at once.
// label, if not empty, must start with ifname (the kernel's rule, shown by
// ifconfig as an alias); IPv6 has no labels and ignores it. Adding a VIP
// that is already there is not an error.
func (h *Host) AddVIP(ifname string, vip netip.Addr, label string) error {
	vip = vip.Unmap()
	if !vip.IsValid() {
		return fmt.Errorf("hostnet: add VIP: invalid address")
	}
	link, err := h.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("hostnet: add VIP %v: %w", vip, err)
	}
	a := addrOf(vip, vipBits(vip))
	if vip.Is4() {
		if label != "" && !strings.HasPrefix(label, ifname) {
			return fmt.Errorf("hostnet: add VIP %v: label %q does not start with %q", vip, label, ifname)
		}
		a.Label = label
	} else {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := h.nl.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("hostnet: add VIP %v on %s: %w", vip, ifname, err)
	}
	return nil
}

// DelVIP removes the /32 (/128) vip from interface ifname. Removing a VIP
// that is not there is not an error.
func (h *Host) DelVIP(ifname string, vip netip.Addr) error {
	vip = vip.Unmap()
	link, err := h.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("hostnet: delete VIP %v: %w", vip, err)
	}
	err = h.nl.AddrDel(link, addrOf(vip, vipBits(vip)))
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("hostnet: delete VIP %v from %s: %w", vip, ifname, err)
	}
	return nil
}

// HasAddr reports whether a is an address of any interface of the host
// (lo included), and the index of the first interface that has it.
func (h *Host) HasAddr(a netip.Addr) (ifindex int, ok bool, err error) {
	a = a.Unmap()
	family := netlink.FAMILY_V4
	if a.Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := h.nl.AddrList(nil, family)
	if err != nil {
		return 0, false, fmt.Errorf("hostnet: list addresses: %w", err)
	}
	for _, x := range addrs {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == a {
			return x.LinkIndex, true, nil
		}
	}
	return 0, false, nil
}
