// Package sched holds the IPVS scheduling algorithms, one file each, with the
// kernel's exact arithmetic and tie-breaks (net/netfilter/ipvs/ip_vs_<name>.c),
// and the registry that makes one by its ipvsadm name.
//
// Every scheduler implements service.Scheduler. Schedule never allocates.
// Where the kernel scans every destination per new connection (lc, wlc, sed,
// nq), the schedulers here keep an index updated on load changes so that the
// cost grows with log(n), while the choices, ties included, stay the
// kernel's.
package sched

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"golvs/internal/service"
)

// Options configure a scheduler instance.
type Options struct {
	// Flags are the service flags; sh and mh read FlagSched1 (fallback)
	// and FlagSched2 (port).
	Flags service.Flags
	// Rand returns a uniform random number in [0, n) (twos). Nil means a
	// seeded math/rand/v2 source.
	Rand func(n uint32) uint32
	// LBLCExpiration and LBLCRExpiration are the sysctls lblc_expiration and
	// lblcr_expiration; zero means the kernel default, 24 hours.
	LBLCExpiration  time.Duration
	LBLCRExpiration time.Duration
}

// ErrUnknown is returned by New for a name that is not a scheduler. Its text
// is the kernel's (ENOENT as ipvsadm prints it).
var ErrUnknown = fmt.Errorf("Scheduler or persistence engine not found")

// registry maps ipvsadm names to constructors. An explicit map, not init()
// registration: there are no out-of-tree schedulers.
var registry = map[string]func(Options) service.Scheduler{
	"rr":    func(o Options) service.Scheduler { return NewRoundRobin(o) },
	"wrr":   func(o Options) service.Scheduler { return NewWeightedRoundRobin(o) },
	"lc":    func(o Options) service.Scheduler { return NewLeastConn(o) },
	"wlc":   func(o Options) service.Scheduler { return NewWeightedLeastConn(o) },
	"sed":   func(o Options) service.Scheduler { return NewShortestExpectedDelay(o) },
	"nq":    func(o Options) service.Scheduler { return NewNeverQueue(o) },
	"lblc":  func(o Options) service.Scheduler { return NewLBLC(o) },
	"lblcr": func(o Options) service.Scheduler { return NewLBLCR(o) },
	"dh":    func(o Options) service.Scheduler { return NewDestHash(o) },
	"sh":    func(o Options) service.Scheduler { return NewSourceHash(o) },
	"mh":    func(o Options) service.Scheduler { return NewMaglev(o) },
	"fo":    func(o Options) service.Scheduler { return NewWeightedFailover(o) },
	"ovf":   func(o Options) service.Scheduler { return NewWeightedOverflow(o) },
	"twos":  func(o Options) service.Scheduler { return NewTwoChoices(o) },
}

// New returns a new, unbound scheduler instance by name.
func New(name string, o Options) (service.Scheduler, error) {
	mk, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("scheduler %q: %w", name, ErrUnknown)
	}
	return mk(o), nil
}

// Names returns the names of all schedulers, sorted.
func Names() []string {
	n := make([]string, 0, len(registry))
	for k := range registry {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// goldenRatio32 is the kernel's GOLDEN_RATIO_32 (include/linux/hash.h).
const goldenRatio32 = 0x61C88647

// hash32 is the kernel's generic hash_32(val, bits).
func hash32(v uint32, bits uint) uint32 { return (v * goldenRatio32) >> (32 - bits) }

// fold returns the kernel's folded address in host order: an IPv4 address as
// a big-endian number (ntohl(addr)); for IPv6 the XOR of the four 32-bit
// words, then ntohl, which equals the XOR of their big-endian values.
func fold(a netip.Addr) uint32 {
	if a.Is4() {
		b := a.As4()
		return binary.BigEndian.Uint32(b[:])
	}
	b := a.As16()
	return binary.BigEndian.Uint32(b[0:4]) ^ binary.BigEndian.Uint32(b[4:8]) ^
		binary.BigEndian.Uint32(b[8:12]) ^ binary.BigEndian.Uint32(b[12:16])
}
