package main

import (
	"context"
	"log/slog"

	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/hostnet"
	"golvs/internal/web"
)

// allInterfaces is the --interfaces value (and "" the same) that takes
// every interface that is up, Ethernet, not loopback and not a bridge or
// bond port (hostnet's default), followed as interfaces come and go.
const allInterfaces = "all"

// dataPlaneConfig is what the director's flags say about the data plane.
type dataPlaneConfig struct {
	// Interfaces is --interfaces: the links the director forwards on, a
	// comma-separated list; "all" (or "") for every interface that is
	// up, Ethernet, not loopback and not a bridge or bond port, as found
	// at start; or "none" for a control plane without a data plane
	// (tests, configuration checks).
	Interfaces string
	// Queues is the number of data-path workers, each with its own
	// receive rings (flows are spread over them by client); 0 means
	// dataPlaneQueues' default. The control plane's counters need as
	// many shards (control.Config.StatsShards = dataPlaneQueues(Queues)).
	Queues int
	// MarkRules is --fwmark-rules: a file of MARK rules in iptables
	// syntax for firewall-mark services (package fwmark); "" for none.
	MarkRules string
	// HostMarks is --fwmark-from-host: evaluate the MARK rules of the
	// host's nftables ruleset (iptables-nft's included).
	HostMarks bool
	// DenySets is --deny-set: nftables sets of addresses whose packets
	// to the director the data plane drops.
	DenySets []hostnet.SetName
}

// plane is a running data plane: Stop stops it and waits for its
// goroutines; Stats (nil without a data plane) sums its workers' counters.
type plane struct {
	Stop  func() error
	Stats func() web.DataPlaneStats
}

// startDataPlane starts the packet path of the director over eng (which
// reads ctl's services) and returns it. It returns when the data plane is running; ctx ends it as
// well (stop must still be called).
//
// The packet path is AF_PACKET rings (internal/link/afpacket) with the
// host's view, neighbours and ingress rule (internal/hostnet) around the
// pipeline (internal/datapath): see startAFPacket.
func startDataPlane(ctx context.Context, cfg dataPlaneConfig, eng *engine.Engine, ctl *control.Control, log *slog.Logger) (plane, error) {
	if cfg.Interfaces == "none" {
		return plane{Stop: func() error { return nil }}, nil
	}
	p, err := startAFPacket(ctx, cfg, dataPlaneQueues(cfg.Queues), eng, ctl, log)
	if err != nil {
		return plane{}, err
	}
	return plane{Stop: p.shutdown, Stats: p.webStats}, nil
}
