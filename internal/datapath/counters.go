package datapath

import (
	"sync/atomic"

	"golvs/internal/engine"
	"golvs/internal/flow"
	"golvs/internal/forward"
)

// Reason is why the pipeline did not forward a frame as it came. Each has
// a counter (style: one counter per drop reason).
type Reason uint8

const (
	ReasonNone Reason = iota
	// ReasonMalformed: the frame did not parse (Counters.Parse says how).
	ReasonMalformed
	// ReasonFragment: a non-first IP fragment of service traffic; the
	// kernel reassembles before IPVS, GoLVS does not (yet).
	ReasonFragment
	// ReasonDestUnavailable: the connection's real server was deleted
	// (expire_nodest_conn off).
	ReasonDestUnavailable
	// ReasonTableFull: a new connection found the connection table full.
	ReasonTableFull
	// ReasonEngine: another drop decided by the engine.
	ReasonEngine
	// ReasonRejected: no real server available; answered with ICMP port
	// unreachable (ip_vs_leave).
	ReasonRejected
	// ReasonFragNeeded: too big with DF; answered with ICMP
	// fragmentation needed / packet too big.
	ReasonFragNeeded
	// ReasonTTLExpired: TTL or hop limit ran out; answered with ICMP time
	// exceeded.
	ReasonTTLExpired
	// ReasonTooBig: too big and no error may be sent.
	ReasonTooBig
	// ReasonTunnelMTU: the route's MTU leaves less than the minimum for
	// the tunnel.
	ReasonTunnelMTU
	// ReasonNoRoute: no route to the real server or the client.
	ReasonNoRoute
	// ReasonNeighbourParked: the next hop's MAC is not known yet; the
	// frame waits for the resolution (it is not lost).
	ReasonNeighbourParked
	// ReasonNeighbour: the next hop's MAC is not known and its queue is
	// full; the frame is lost and the sender will retransmit.
	ReasonNeighbour
	// ReasonRewrite: a rewrite failed (Counters.Rewrite says how).
	ReasonRewrite
	// ReasonBadMethod: a forwarding method the data path does not have.
	ReasonBadMethod

	// ReasonDenied: the client is in the director's deny list (the
	// addresses of the nftables sets lvsd --deny-set names).
	ReasonDenied

	// NumReasons is the number of reasons.
	NumReasons
)

var reasonNames = [NumReasons]string{
	ReasonNone:            "none",
	ReasonMalformed:       "malformed",
	ReasonDenied:          "denied",
	ReasonFragment:        "fragment",
	ReasonDestUnavailable: "dest_unavailable",
	ReasonTableFull:       "conn_table_full",
	ReasonEngine:          "engine",
	ReasonRejected:        "no_dest_rejected",
	ReasonFragNeeded:      "frag_needed",
	ReasonTTLExpired:      "ttl_expired",
	ReasonTooBig:          "too_big",
	ReasonTunnelMTU:       "tunnel_mtu_too_small",
	ReasonNoRoute:         "no_route",
	ReasonNeighbourParked: "neighbour_parked",
	ReasonNeighbour:       "neighbour_unresolved",
	ReasonRewrite:         "rewrite_failed",
	ReasonBadMethod:       "bad_method",
}

// String returns the reason's metric-label name.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

func engineReason(r engine.DropReason) Reason {
	switch r {
	case engine.DropDestUnavailable:
		return ReasonDestUnavailable
	case engine.DropTableFull:
		return ReasonTableFull
	}
	return ReasonEngine
}

// Counters are one worker's counters. Written by the worker, read by
// anyone (atomics).
type Counters struct {
	transmitted, toHost atomic.Uint64
	drops               [NumReasons]atomic.Uint64
	parse               [flow.NumReasons]atomic.Uint64
	rewrite             [forward.NumResults]atomic.Uint64
	// fragNeededUnsent counts packets larger than the egress MTU that may
	// be fragmented: GoLVS sends them whole.
	fragNeededUnsent atomic.Uint64
}

func (c *Counters) count(r Result) {
	switch r.Action {
	case Transmit:
		c.transmitted.Add(1)
	case ToHost:
		c.toHost.Add(1)
	case Drop:
		c.drops[r.Reason].Add(1)
	}
}

// Transmitted returns the frames sent out by the data path.
func (c *Counters) Transmitted() uint64 { return c.transmitted.Load() }

// ToHost returns the frames handed to the host's stack.
func (c *Counters) ToHost() uint64 { return c.toHost.Load() }

// Drops returns the drops (and answered packets) by reason.
func (c *Counters) Drops() [NumReasons]uint64 {
	var out [NumReasons]uint64
	for i := range c.drops {
		out[i] = c.drops[i].Load()
	}
	return out
}

// Parse returns the malformed frames by parse failure.
func (c *Counters) Parse() [flow.NumReasons]uint64 {
	var out [flow.NumReasons]uint64
	for i := range c.parse {
		out[i] = c.parse[i].Load()
	}
	return out
}

// Rewrite returns the failed rewrites by result.
func (c *Counters) Rewrite() [forward.NumResults]uint64 {
	var out [forward.NumResults]uint64
	for i := range c.rewrite {
		out[i] = c.rewrite[i].Load()
	}
	return out
}
