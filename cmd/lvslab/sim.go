package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"

	"golvs/internal/datapath"
	"golvs/internal/flow"
	"golvs/internal/lvslab"
	"golvs/internal/lvslab/director"
	"golvs/internal/service"
)

const simUsage = `usage: lvslab sim [--seed N] [--conns N] [--pcap DIR] [--trace]

Run the GoLVS director on a simulated network and show NAT, DR and TUN
services at work, as ipvsadm would show them.

  --seed N    seed of the simulation (same seed, same run)   (default 1)
  --conns N   client connections per service                 (default 30)
  --pcap DIR  write a pcap of every simulated segment to DIR
  --trace     print every frame delivered
`

// simMain runs lvslab sim.
func simMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	seed := fs.Uint64("seed", 1, "")
	conns := fs.Int("conns", 30, "")
	pcap := fs.String("pcap", "", "")
	trace := fs.Bool("trace", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, simUsage)
			return 0
		}
		fmt.Fprintf(stderr, "lvslab sim: %v\n%s", err, simUsage)
		return 2
	}
	if *conns < 1 || *conns > 10000 {
		fmt.Fprintln(stderr, "lvslab: --conns must be from 1 to 10000")
		return 2
	}
	if err := sim(stdout, *seed, *conns, *pcap, *trace); err != nil {
		fmt.Fprintln(stderr, "lvslab:", err)
		return 1
	}
	return 0
}

type scenario struct {
	title   string
	method  service.FwdMethod
	sched   string
	weights []int32
}

func sim(w io.Writer, seed uint64, conns int, pcapDir string, trace bool) error {
	scenarios := []scenario{
		{"NAT (-m): requests and replies cross the director, which rewrites the VIP to the real server and back", service.Masq, "wrr", []int32{1, 2, 3}},
		{"DR (-g): the director rewrites only the MAC; real servers hold the VIP on lo and answer the client directly", service.Route, "rr", []int32{1, 1, 1}},
		{"TUN (-i): the director encapsulates IP-in-IP; real servers decapsulate and answer the client directly", service.Tunnel, "wlc", []int32{1, 1, 1}},
	}
	for i, sc := range scenarios {
		if err := runScenario(w, sc, seed+uint64(i), conns, pcapDir, trace); err != nil {
			return err
		}
	}
	return nil
}

func runScenario(w io.Writer, sc scenario, seed uint64, conns int, pcapDir string, trace bool) error {
	cfg := lvslab.Config{Seed: seed}
	if trace {
		cfg.Trace = w
	}
	if pcapDir != "" {
		cfg.PCAPDir = fmt.Sprintf("%s/%s", pcapDir, sc.method)
		if err := os.MkdirAll(cfg.PCAPDir, 0o755); err != nil {
			return err
		}
	}
	replies := 0
	var top *director.Topology
	tap := func(_ int, frame []byte, _ datapath.Result) {
		var f flow.Parsed
		f.Decode(frame)
		if f.Tuple.IsValid() && f.Tuple.Proto == service.ProtoTCP && f.Tuple.SrcPort == 80 && f.Tuple.SrcAddr() != director.VIP4 {
			replies++
		}
	}
	top, err := director.NewTopology(director.TopologyConfig{Net: cfg, Method: sc.method, Director: director.Config{Seed: seed, Tap: tap}})
	if err != nil {
		return err
	}
	defer top.Net.Close()
	d := top.Director
	k := service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: director.VIP4, Port: 80}
	if err := d.Control.AddService(k, service.Config{Sched: sc.sched}); err != nil {
		return err
	}
	for i, wt := range sc.weights {
		if err := d.Control.AddDest(k, director.RSAddr4(i), 80, service.DestConfig{Fwd: sc.method, Weight: wt}); err != nil {
			return err
		}
	}

	fmt.Fprintf(w, "\n=== %s\n\n", sc.title)
	fmt.Fprintf(w, "$ ipvsadm -A -t %v -s %s\n", netip.AddrPortFrom(director.VIP4, 80), sc.sched)
	for i, wt := range sc.weights {
		fmt.Fprintf(w, "$ ipvsadm -a -t %v -r %v %s -w %d\n", netip.AddrPortFrom(director.VIP4, 80),
			netip.AddrPortFrom(director.RSAddr4(i), 80), flagOf(sc.method), wt)
	}
	answers := map[string]int{}
	for range conns {
		name, err := top.Request(director.VIP4, 80)
		if err != nil {
			return fmt.Errorf("%v: request: %w", sc.method, err)
		}
		answers[name]++
	}
	fmt.Fprintf(w, "\n%d client connections to %v: answers by real server: %s\n",
		conns, netip.AddrPortFrom(director.VIP4, 80), formatCounts(answers))
	listing(w, d.Control.Snapshot())
	v := d.Control.Snapshot().Get(k).Stats.Read()
	fmt.Fprintf(w, "\ncounters: %d conns, %d packets in, %d packets out, %d bytes in, %d bytes out\n",
		v.Conns, v.InPkts, v.OutPkts, v.InBytes, v.OutBytes)
	fmt.Fprintf(w, "reply frames from real servers seen by the director: %d\n", replies)

	// Quiesce the busiest real server and show new connections avoid it.
	busy := director.RSAddr4(len(sc.weights) - 1)
	fmt.Fprintf(w, "\n$ ipvsadm -e -t %v -r %v %s -w 0    # quiesce: no new connections\n",
		netip.AddrPortFrom(director.VIP4, 80), netip.AddrPortFrom(busy, 80), flagOf(sc.method))
	if err := d.Control.EditDest(k, busy, 80, service.DestConfig{Fwd: sc.method, Weight: 0}); err != nil {
		return err
	}
	answers = map[string]int{}
	for range 6 {
		name, err := top.Request(director.VIP4, 80)
		if err != nil {
			return err
		}
		answers[name]++
	}
	fmt.Fprintf(w, "6 more connections: %s\n", formatCounts(answers))
	drops := d.Worker.Stats().Drops()
	var nz []string
	for r, n := range drops {
		if n != 0 {
			nz = append(nz, fmt.Sprintf("%s=%d", datapath.Reason(r), n))
		}
	}
	if len(nz) > 0 {
		fmt.Fprintf(w, "data-path events: %s\n", strings.Join(nz, " "))
	}
	return nil
}

func flagOf(m service.FwdMethod) string {
	switch m {
	case service.Masq:
		return "-m"
	case service.Tunnel:
		return "-i"
	}
	return "-g"
}

func formatCounts(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// listing prints the services like ipvsadm -L -n (the byte-exact
// formatter belongs to the ipvsadm package, later).
func listing(w io.Writer, s *service.Snapshot) {
	fmt.Fprintf(w, "\n$ ipvsadm -L -n\n")
	fmt.Fprintf(w, "Prot LocalAddress:Port Scheduler Flags\n")
	fmt.Fprintf(w, "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	for _, svc := range s.Services() {
		fmt.Fprintf(w, "TCP  %s %s\n", netip.AddrPortFrom(svc.Key.Addr, svc.Key.Port), svc.Config.Sched)
		ds := append([]*service.Dest(nil), svc.Dests...)
		sort.Slice(ds, func(i, j int) bool { return ds[i].Addr.Less(ds[j].Addr) })
		for _, d := range ds {
			fmt.Fprintf(w, "  -> %-28s %-7s %-6d %-10d %-10d\n", netip.AddrPortFrom(d.Addr, d.Port), d.Fwd(), d.Weight(), d.ActiveConns(), d.InactConns())
		}
	}
}
