package realserver

import (
	"log/slog"
	"net/netip"
	"sync/atomic"
)

// DecapConfig configures a Decap.
type DecapConfig struct {
	// Name is the TUN device to create; default DefaultTunName. It must
	// not exist yet.
	Name string
	// VIPs are the only inner destinations injected.
	VIPs []netip.Addr
	// Encaps are the encapsulations to receive (Result.User); 0 means all
	// that the VIPs need (EncapsFor). Outer-IPv6 ones are skipped, with a
	// log line, if the host has no IPv6.
	Encaps Encaps
	// Logger; nil discards.
	Logger *slog.Logger

	// procSys replaces /proc/sys in tests.
	procSys string
}

// DecapCounters are a Decap's totals since it was opened.
type DecapCounters struct {
	// Received counts outer packets read from the raw sockets.
	Received uint64
	// Injected counts inner packets written into the TUN device.
	Injected uint64
	// NotVIP counts inner packets dropped because their destination is
	// not a VIP.
	NotVIP uint64
	// Malformed counts packets dropped as truncated or inconsistent (see
	// decapsulate).
	Malformed uint64
	// ChecksumCompleted counts inner packets whose partial TCP or UDP
	// checksum was completed before injection (see the package doc).
	ChecksumCompleted uint64
	// WriteErrors counts inner packets the TUN device refused.
	WriteErrors uint64
}

// decapCounters is one reader's share of the counters: written by its
// goroutine only, read by Counters at any time, so atomics without
// contention (a cache line each, as the readers run on different cores).
type decapCounters struct {
	received, injected, notVIP, malformed, csum, writeErrs atomic.Uint64
	_                                                      [16]byte // pad 48 bytes of counters to 64
}

func (c *decapCounters) addTo(t *DecapCounters) {
	t.Received += c.received.Load()
	t.Injected += c.injected.Load()
	t.NotVIP += c.notVIP.Load()
	t.Malformed += c.malformed.Load()
	t.ChecksumCompleted += c.csum.Load()
	t.WriteErrors += c.writeErrs.Load()
}
