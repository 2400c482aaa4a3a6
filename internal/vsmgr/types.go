package vsmgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"time"

	"golvs/internal/service"
)

// Errors of Apply and of a Manager after Shutdown.
var (
	ErrConfig   = errors.New("vsmgr: invalid virtual server configuration")
	ErrShutdown = errors.New("vsmgr: manager shut down")
)

// weightLimit is keepalived's IPVS_WEIGHT_LIMIT (INT32_MAX, the largest
// weight the kernel's signed 32-bit weight holds): effective weights are
// clamped to 0..weightLimit before they reach IPVS (real_weight()).
const weightLimit = math.MaxInt32

// realWeight is keepalived's real_weight(): the IPVS weight of an
// effective weight, which dynamic adjustments may push out of range.
func realWeight(w int64) int32 {
	switch {
	case w < 0:
		return 0
	case w > weightLimit:
		return weightLimit
	}
	return int32(w)
}

// Checker is one health checker of a real server as the manager sees it:
// only its identity and whether it is in alpha mode. The checkers
// themselves (package check) report through Manager.SetHealth.
type Checker struct {
	// ID identifies the checker across a reload: a checker of a
	// surviving real server whose ID is unchanged keeps its state (up or
	// down, whether it has run, its weight adjustment), as keepalived's
	// migrate_checkers does for checkers of the same type and parameters.
	// IDs are unique within a real server.
	ID string
	// Alpha: the checker starts down and the server is not up until it
	// has succeeded once (alpha, inherited virtual_server -> real_server
	// -> checker by the parser).
	Alpha bool
}

// RealServer is one real_server block (or a sorry_server) after the
// parser's inheritance and defaults.
type RealServer struct {
	Addr netip.Addr
	// Port is the configured port. IPVS gets the virtual service's port
	// instead for a non-NAT server of an address service and 0 for a
	// non-NAT server of a fwmark service, as keepalived's ipvs_cmd and
	// ipvs_group_cmd do.
	Port uint16
	// Dest is the configured IPVS destination: forwarding method,
	// tunnel parameters, thresholds and the configured weight (the
	// sorry server's is 1 in keepalived: it has no weight keyword).
	Dest service.DestConfig
	// InhibitOnFailure: a failed server stays in IPVS with weight 0
	// instead of being removed.
	InhibitOnFailure bool
	// NotifyUp and NotifyDown are command lines run when the server goes
	// up or down ("" = none). Unused for a sorry server.
	NotifyUp, NotifyDown string
	// Checkers are the server's health checkers; a server without any is
	// always up. Unused for a sorry server.
	Checkers []Checker
}

// VirtualServer is one virtual_server block after the parser's work.
type VirtualServer struct {
	// Name is the virtual server's identity across reloads, unique in a
	// configuration: the parser derives it from the block's header as
	// keepalived's vs_iseq compares them: KeyName(key) for an address or
	// fwmark service, "group NAME" (with the protocol, or an ordinal when
	// one group serves several virtual servers) for a group. It also
	// names the virtual server in logs.
	Name string
	// Keys are the IPVS services: one for an address or fwmark virtual
	// server, one per address and fwmark of a virtual_server_group. Keys
	// are unique across a configuration.
	Keys   []service.Key
	Config service.Config
	Reals  []RealServer
	// Sorry is the sorry_server (nil = none): in IPVS while the quorum is
	// down, instead of the real servers. It may have the address and port
	// of a real server.
	Sorry *RealServer
	// SorryInhibit (sorry_server_inhibit) keeps the sorry server in IPVS
	// with weight 0 while it is not needed.
	SorryInhibit bool
	// Quorum is the least total weight of alive real servers for the
	// virtual server to be up (keepalived's default is 1); Hysteresis
	// widens the band: the quorum is gained at Quorum+Hysteresis and lost
	// below Quorum-Hysteresis. keepalived's parser lowers a quorum above
	// the servers' total weight and a hysteresis >= the quorum.
	Quorum, Hysteresis int
	// QuorumUp and QuorumDown are command lines run when the quorum is
	// gained or lost ("" = none).
	QuorumUp, QuorumDown string
	// Omega: on shutdown, run the notify_down scripts of the alive real
	// servers and quorum_down.
	Omega bool
}

// KeyName is the Name of an address or fwmark virtual server: the
// service key as ipvsadm -L names it ("TCP 198.18.0.10:80", "FWM 1
// (IPv4)").
func KeyName(k service.Key) string { return k.String() }

// RSID names a real server in SetHealth and Status: the Name of its
// virtual server and its configured address and port.
type RSID struct {
	VS   string
	Addr netip.Addr
	Port uint16
}

func (id RSID) String() string {
	return fmt.Sprintf("%s -> %s", id.VS, netip.AddrPortFrom(id.Addr, id.Port))
}

// Report is one checker's verdict, after its retries: keepalived calls
// the manager (update_svr_checker_state) only when a checker's state is
// decided, and with every first result.
type Report struct {
	// Checker is the index of the checker in RealServer.Checkers of the
	// configuration last applied.
	Checker int
	// Up is the verdict.
	Up bool
	// Weight, when HasWeight, is the checker's contribution to the
	// server's effective weight, which is the configured weight plus the
	// contributions of its checkers. With Absolute it is instead the
	// whole effective weight the checker asks for (MISC_CHECK
	// misc_dynamic: exit status - 2): keepalived stores it as
	// "Weight - configured weight", recomputed when a reload changes the
	// configured weight (migrate_misc_check). Without Absolute it is an
	// amount added (FILE_CHECK: file value x weight). A down verdict
	// drops the checker's contribution (check_misc.c, track_file.c).
	Weight    int64
	HasWeight bool
	Absolute  bool
}

// FlushMode is keepalived's lvs_flush_on_stop.
type FlushMode uint8

// Flush modes.
const (
	// FlushNone (the default) removes each real server, runs the omega
	// scripts, then removes the service.
	FlushNone FlushMode = iota
	// FlushVS (lvs_flush_on_stop VS) removes each service without
	// removing its real servers first: no notify_down scripts.
	FlushVS
	// FlushAll (lvs_flush_on_stop) flushes IPVS, services added with
	// ipvsadm included.
	FlushAll
)

// Options configure a Manager. The zero value is usable.
type Options struct {
	// Log receives one record per transition; nil discards.
	Log *slog.Logger
	// RunScript runs a notify or quorum script's command line and
	// returns when it has ended or ctx is done (it must then kill the
	// script). nil runs it with /bin/sh -c in its own process group.
	RunScript func(ctx context.Context, cmdline string) error
	// ScriptTimeout bounds every script run outside shutdown; 0 means
	// 30 s (see defaultScriptTimeout).
	ScriptTimeout time.Duration
	// Now gives the time of a transition for Status; nil = time.Now.
	Now func() time.Time
	// RSInitNotifies (rs_init_notifies) runs notify_up for the real
	// servers that are up at startup, and for new real servers up at a
	// reload.
	RSInitNotifies bool
	// FlushOnStop is lvs_flush_on_stop; it also governs a virtual server
	// removed by a reload, as in keepalived (clear_service_vs).
	FlushOnStop FlushMode
}

// Diff says what an Apply did, by virtual server Name and real server.
type Diff struct {
	AddedVS, RemovedVS, ChangedVS, UnchangedVS []string
	AddedRS, RemovedRS, ChangedRS              []RSID
}

// Empty reports whether the Apply changed nothing.
func (d Diff) Empty() bool {
	return len(d.AddedVS)+len(d.RemovedVS)+len(d.ChangedVS)+
		len(d.AddedRS)+len(d.RemovedRS)+len(d.ChangedRS) == 0
}

// VSStatus is the state of one virtual server.
type VSStatus struct {
	Name               string
	Keys               []service.Key
	QuorumUp           bool
	Quorum, Hysteresis int
	// WeightSum is the total IPVS weight of the alive real servers, the
	// figure the quorum is decided on.
	WeightSum int64
	// SorryActive: the sorry server serves in place of the real servers.
	SorryActive bool
	Sorry       *RSStatus
	Reals       []RSStatus
}

// RSStatus is the state of one real server (or the sorry server).
type RSStatus struct {
	ID RSID
	// ConfiguredWeight is the weight of the configuration;
	// EffectiveWeight the weight after dynamic adjustments, clamped as
	// IPVS would have it.
	ConfiguredWeight, EffectiveWeight int32
	// Up: alive (all checkers up); for the sorry server, in service.
	Up             bool
	FailedCheckers int
	// InIPVS: the destination is in every service of the virtual server
	// (read from the live snapshot, so a deletion with ipvsadm shows);
	// IPVSWeight is its weight in the first.
	InIPVS     bool
	IPVSWeight int32
	// LastChange is when Up last changed (or the server was added).
	LastChange time.Time
}
