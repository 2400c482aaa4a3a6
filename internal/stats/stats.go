// Package stats holds the packet and connection counters that IPVS keeps per
// destination, per virtual service and globally (kernel ip_vs_core.c
// ip_vs_in_stats, ip_vs_out_stats, ip_vs_conn_stats; struct ip_vs_stats).
//
// Counters are sharded: each data-path worker adds to its own cache-line
// sized shard without contention, and readers sum the shards. Zeroing
// (ipvsadm -Z) records a baseline that later reads subtract, as the kernel's
// kstats0 does.
package stats

import (
	"sync"
	"sync/atomic"
)

// Values is one reading of the five IPVS counters.
type Values struct {
	Conns    uint64 // connections scheduled (not templates, not synced)
	InPkts   uint64 // packets client -> real server
	OutPkts  uint64 // packets real server -> client (NAT / local only)
	InBytes  uint64 // IP bytes (no L2) client -> real server
	OutBytes uint64 // IP bytes real server -> client
}

// Sub returns v - o field by field.
func (v Values) Sub(o Values) Values {
	return Values{
		Conns:    v.Conns - o.Conns,
		InPkts:   v.InPkts - o.InPkts,
		OutPkts:  v.OutPkts - o.OutPkts,
		InBytes:  v.InBytes - o.InBytes,
		OutBytes: v.OutBytes - o.OutBytes,
	}
}

// shard is one worker's counters, padded to a 64-byte cache line so that two
// workers never write the same line.
type shard struct {
	conns, inPkts, outPkts, inBytes, outBytes atomic.Uint64
	_                                         [64 - 5*8]byte
}

// Counters is a sharded set of the five counters. It is safe for concurrent
// use: Add* from any goroutine (each worker should use its own shard index),
// Read and Zero from the control plane.
type Counters struct {
	shards []shard // immutable after New

	mu       sync.Mutex
	baseline Values // guarded by mu: the raw values at the last Zero
}

// New returns counters with n shards (n < 1 is taken as 1). Use the number
// of data-path workers.
func New(n int) *Counters {
	if n < 1 {
		n = 1
	}
	return &Counters{shards: make([]shard, n)}
}

func (c *Counters) shard(i int) *shard {
	// Unsigned modulo: a negative or too large worker index still lands in
	// range, at the cost of sharing a shard.
	return &c.shards[uint(i)%uint(len(c.shards))]
}

// AddConn counts one newly scheduled connection.
func (c *Counters) AddConn(worker int) { c.shard(worker).conns.Add(1) }

// AddIn counts one packet of n IP bytes in the client -> server direction.
func (c *Counters) AddIn(worker int, n int) {
	s := c.shard(worker)
	s.inPkts.Add(1)
	s.inBytes.Add(uint64(n))
}

// AddOut counts one packet of n IP bytes in the server -> client direction.
func (c *Counters) AddOut(worker int, n int) {
	s := c.shard(worker)
	s.outPkts.Add(1)
	s.outBytes.Add(uint64(n))
}

// AddInN counts pkts packets and n bytes client -> server at once (used to
// fold in counters gathered elsewhere, such as a fast path).
func (c *Counters) AddInN(worker int, pkts, n uint64) {
	s := c.shard(worker)
	s.inPkts.Add(pkts)
	s.inBytes.Add(n)
}

// AddOutN counts pkts packets and n bytes server -> client at once.
func (c *Counters) AddOutN(worker int, pkts, n uint64) {
	s := c.shard(worker)
	s.outPkts.Add(pkts)
	s.outBytes.Add(n)
}

// Raw returns the sum over shards, ignoring the Zero baseline. The rate
// estimator reads this: rates are differences, so the baseline cancels.
func (c *Counters) Raw() Values {
	var v Values
	for i := range c.shards {
		s := &c.shards[i]
		v.Conns += s.conns.Load()
		v.InPkts += s.inPkts.Load()
		v.OutPkts += s.outPkts.Load()
		v.InBytes += s.inBytes.Load()
		v.OutBytes += s.outBytes.Load()
	}
	return v
}

// Read returns the counters since the last Zero, as ipvsadm --stats shows.
func (c *Counters) Read() Values {
	raw := c.Raw()
	c.mu.Lock()
	b := c.baseline
	c.mu.Unlock()
	return raw.Sub(b)
}

// Zero makes later Reads start from 0 (ipvsadm -Z).
func (c *Counters) Zero() {
	raw := c.Raw()
	c.mu.Lock()
	c.baseline = raw
	c.mu.Unlock()
}
