// Package director runs GoLVS's real director on a simulated host of
// package lvslab: the host's ingress is intercepted by the datapath
// pipeline (the engine deciding, package forward rewriting), frames it
// transmits go out of the host's interfaces, frames it passes go to the
// host's own stack, and the pipeline's routing and neighbour views are
// filled from the host, as package hostnet fills them from the kernel on a
// real machine.
//
// It is the adapter shared by the data path's end-to-end tests and the
// simulated lab (cmd/lvslab sim); it is never part of the daemon.
package director

import (
	"fmt"
	"net/netip"

	"golvs/internal/control"
	"golvs/internal/datapath"
	"golvs/internal/engine"
	"golvs/internal/forward"
	"golvs/internal/lvslab"
)

// Config configures a Director.
type Config struct {
	// Seed seeds the connection table's hash (0: random).
	Seed uint64
	// MaxConns bounds the connection table (0: 1<<14).
	MaxConns int
	// Tap, if set, sees every frame reaching the director, before the
	// pipeline, with the verdict the pipeline gave it.
	Tap func(ifindex int, frame []byte, res datapath.Result)
	// Errorf reports a failure to transmit (nil: ignored).
	Errorf func(format string, args ...any)
}

// Director is the real pipeline attached to a simulated host.
type Director struct {
	Host     *lvslab.Host
	Control  *control.Control
	Engine   *engine.Engine
	Pipeline *datapath.Pipeline
	Worker   *datapath.Worker

	cfg Config
	res [1]datapath.Result
}

// New attaches a director to h. The host's interfaces and routes must be
// configured; call RefreshView after changing them.
func New(h *lvslab.Host, net *lvslab.Network, cfg Config) (*Director, error) {
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 1 << 14
	}
	d := &Director{Host: h, cfg: cfg}
	clk := net.Clock()
	d.Control = control.New(control.Config{Clock: clk})
	var err error
	d.Engine, err = engine.New(engine.Config{Control: d.Control, Clock: clk, MaxConns: cfg.MaxConns, TableShards: 4, Seed: cfg.Seed})
	if err != nil {
		return nil, fmt.Errorf("director on %s: %w", h.Name(), err)
	}
	neigh := datapath.NewNeighbours(func(ifindex int, addr netip.Addr) {
		h.Resolve(ifindex, addr, func(mac lvslab.MAC, ok bool) {
			d.Pipeline.Neighbours().Set(ifindex, addr, mac, ok)
		})
	}, func(ifindex int, frame []byte) { d.transmit(ifindex, frame) })
	d.Pipeline = datapath.New(datapath.Config{Engine: d.Engine, Neighbours: neigh})
	d.RefreshView()
	d.Worker = d.Pipeline.NewWorker(0)
	h.SetIngressHook(d.hook)
	return d, nil
}

// RefreshView fills the pipeline's view from the host: its interfaces,
// their addresses, the addresses on its loopback (VIPs), and its routes.
func (d *Director) RefreshView() {
	var ifaces []datapath.Interface
	var extra []netip.Addr
	for _, ifc := range d.Host.Interfaces() {
		if ifc.IsLoopback() {
			for _, p := range ifc.Addrs() {
				extra = append(extra, p.Addr())
			}
			continue
		}
		ifaces = append(ifaces, datapath.Interface{Index: ifc.Index(), Name: ifc.Name(), MAC: ifc.MAC(), MTU: ifc.MTU(), Addrs: ifc.Addrs()})
	}
	var routes []datapath.Route
	for _, r := range d.Host.Routes() {
		routes = append(routes, datapath.Route{Dst: r.Dst, Gateway: r.Gateway, Ifindex: r.IfIndex, Src: r.Src})
	}
	d.Pipeline.SetView(datapath.NewView(ifaces, routes, extra...))
}

func (d *Director) transmit(ifindex int, frame []byte) {
	if err := d.Host.Transmit(ifindex, frame); err != nil && d.cfg.Errorf != nil {
		d.cfg.Errorf("director transmit on %d: %v", ifindex, err)
	}
}

// hook runs the pipeline on a frame reaching the host.
func (d *Director) hook(ifindex int, frame []byte) bool {
	buf := make([]byte, forward.Headroom+len(frame))
	copy(buf[forward.Headroom:], frame)
	fr := [1]datapath.Frame{{Buf: forward.Buf{B: buf, Off: forward.Headroom, Len: len(frame)}, Ifindex: ifindex}}
	d.Worker.Process(fr[:], d.res[:])
	if d.cfg.Tap != nil {
		d.cfg.Tap(ifindex, frame, d.res[0])
	}
	out := fr[0].Buf.Frame()
	switch r := d.res[0]; r.Action {
	case datapath.Transmit:
		d.transmit(r.Ifindex, append([]byte(nil), out...))
	case datapath.ToHost:
		d.Host.Inject(ifindex, append([]byte(nil), out...))
	}
	return true
}
