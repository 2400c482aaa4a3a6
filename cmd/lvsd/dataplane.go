package main

import (
	"context"
	"log/slog"

	"golvs/internal/control"
	"golvs/internal/engine"
)

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
}

// startDataPlane starts the packet path of the director over eng (which
// reads ctl's services) and returns a function that stops it and waits for
// its goroutines. It returns when the data plane is running; ctx ends it as
// well (stop must still be called).
//
// The packet path is AF_PACKET rings (internal/link/afpacket) with the
// host's view, neighbours and ingress rule (internal/hostnet) around the
// pipeline (internal/datapath): see startAFPacket.
func startDataPlane(ctx context.Context, cfg dataPlaneConfig, eng *engine.Engine, ctl *control.Control, log *slog.Logger) (stop func() error, err error) {
	if cfg.Interfaces == "none" {
		return func() error { return nil }, nil
	}
	return startAFPacket(ctx, cfg, dataPlaneQueues(cfg.Queues), eng, ctl, log)
}
