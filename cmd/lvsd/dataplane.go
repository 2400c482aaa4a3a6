package main

import (
	"context"
	"errors"
	"log/slog"

	"golvs/internal/control"
	"golvs/internal/engine"
)

// dataPlaneConfig is what the director's flags say about the data plane.
type dataPlaneConfig struct {
	// Interfaces is --interfaces: the links the director forwards on, a
	// comma-separated list, or "none" for a control plane without a data
	// plane (tests, configuration checks).
	Interfaces string
}

// startDataPlane starts the packet path of the director over eng (which
// reads ctl's services) and returns a function that stops it and waits for
// its goroutines. It returns when the data plane is running; ctx ends it as
// well (stop must still be called).
//
// This is the seam where AF_PACKET links (internal/link/afpacket),
// internal/hostnet and internal/datapath are wired in; until then only
// "none" is accepted.
func startDataPlane(ctx context.Context, cfg dataPlaneConfig, eng *engine.Engine, ctl *control.Control, log *slog.Logger) (stop func() error, err error) {
	_, _, _, _ = ctx, eng, ctl, log
	if cfg.Interfaces == "none" {
		return func() error { return nil }, nil
	}
	return nil, errors.New("data plane not wired yet")
}
