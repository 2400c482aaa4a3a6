package web

import (
	"net/netip"
	"time"

	"golvs/internal/conntable"
	"golvs/internal/control"
	"golvs/internal/datapath"
	"golvs/internal/engine"
	"golvs/internal/service"
)

// Source is where the handler reads what it shows. Control is required;
// every provider func is optional (nil: the subsystem is not running, and
// its metrics and its part of the page are left out). Providers are called
// at request time, possibly concurrently from several requests: they must
// be safe for concurrent use and quick (they run while a scrape waits).
type Source struct {
	// Control holds the virtual services, their real servers, counters
	// and rate estimates, and the global counters.
	Control *control.Control

	// Conns reports the connection table (see EngineConnTable).
	Conns func() ConnTable

	// DataPlane reports the data plane's frame counters (see
	// SumDataPlane).
	DataPlane func() DataPlaneStats

	// Health reports the health of real servers as the checkers see it,
	// one entry per (service, real server). A real server that a checker
	// took out of the table (keepalived removes failed servers unless
	// inhibit_on_failure) still has its entry.
	Health func() []RealServerHealth

	// VRRP reports the VRRP instances.
	VRRP func() []VRRPInstance

	// Sync reports the connection-synchronisation daemons (at most one
	// master and one backup, as ipvsadm --start-daemon allows).
	Sync func() []SyncDaemon

	// Info reports the build; nil reads the binary's build information.
	Info func() BuildInfo
}

// ConnTable is the state of the connection table.
type ConnTable struct {
	Conns     int `json:"conns"`     // connections (not templates)
	Templates int `json:"templates"` // persistence templates
	Limit     int `json:"limit"`     // the most entries (connections and templates) it holds

	Inserts   uint64 `json:"inserts"`    // entries inserted since start
	Expired   uint64 `json:"expired"`    // entries removed because their timer ran out
	FullDrops uint64 `json:"full_drops"` // new connections refused because the table was full
}

// EngineConnTable returns a Source.Conns provider reading e's connection
// table; limit is the engine's Config.MaxConns (0: the engine's default).
// (The table does not report its own limit.)
func EngineConnTable(e *engine.Engine, limit int) func() ConnTable {
	if limit <= 0 {
		limit = conntable.DefaultMax
	}
	return func() ConnTable {
		t := e.Conns()
		c, tp := t.Len()
		st := t.Stats()
		return ConnTable{
			Conns: c, Templates: tp, Limit: limit,
			Inserts: st.Inserts, Expired: st.Expired, FullDrops: st.FullDrops,
		}
	}
}

// DataPlaneStats are the data plane's frame counters, summed over its
// workers.
type DataPlaneStats struct {
	Transmitted uint64 // frames sent out by the data path
	ToHost      uint64 // frames handed to the host's stack
	// Drops counts frames dropped (or answered with an ICMP error) by
	// reason, keyed by datapath.Reason's String.
	Drops map[string]uint64
	// BatchSizes is the distribution of frames per batch; zero when not
	// measured.
	BatchSizes HistogramData
}

// SumDataPlane sums the counters of the data plane's workers
// (datapath.Worker.Stats of each). Every reason but "none" is present in
// Drops, zero or not, so that its series exists from the start.
func SumDataPlane(cs []*datapath.Counters) DataPlaneStats {
	var drops [datapath.NumReasons]uint64
	var st DataPlaneStats
	for _, c := range cs {
		st.Transmitted += c.Transmitted()
		st.ToHost += c.ToHost()
		for i, n := range c.Drops() {
			drops[i] += n
		}
	}
	st.Drops = make(map[string]uint64, datapath.NumReasons-1)
	for i, n := range drops {
		if r := datapath.Reason(i); r != datapath.ReasonNone {
			st.Drops[r.String()] = n
		}
	}
	return st
}

// RealServerHealth is the health of one real server of one service as its
// checker sees it.
type RealServerHealth struct {
	Service service.Key // the virtual service (fwmark services: family and mark)
	Addr    netip.Addr  // the real server
	Port    uint16

	Up bool // the checker's verdict
	// Checker is the kind of checker in keepalived's spelling
	// ("TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "DNS_CHECK", ...).
	Checker string
	// LastResult says what the last check found, for people ("connected",
	// "HTTP status 503", "timeout after 3s").
	LastResult string
	LastCheck  time.Time // when the last check finished; zero: none yet
	LastChange time.Time // when Up last changed; zero: never

	Checks   uint64 // checks run since start
	Failures uint64 // failed checks since start
	// Latency is the distribution of the checks' durations in seconds
	// (a Histogram's Snapshot); zero when not measured.
	Latency HistogramData
}

// VRRPInstance is one VRRP instance.
type VRRPInstance struct {
	Name      string // vrrp_instance name
	Interface string
	VRID      uint8
	// State is keepalived's name of the state: "INIT", "BACKUP",
	// "MASTER", "FAULT" or "STOP".
	State     string
	Priority  int // the effective priority (tracking included)
	SyncGroup string
	VIPs      []netip.Addr

	Transitions    uint64    // state changes since start
	LastTransition time.Time // zero: none yet
}

// Roles of a SyncDaemon (ipvsadm --start-daemon master|backup).
const (
	SyncMaster = "master"
	SyncBackup = "backup"
)

// SyncDaemon is one connection-synchronisation daemon.
type SyncDaemon struct {
	Role      string // SyncMaster or SyncBackup
	SyncID    uint32
	Interface string

	Sent     uint64 // messages sent (master)
	Received uint64 // messages received and accepted (backup)
	// SentConns and ReceivedConns count the connections the messages
	// carried.
	SentConns, ReceivedConns uint64
	// Rejected counts messages received and dropped, by reason (for
	// example "syncid", "version", "malformed", "auth").
	Rejected map[string]uint64

	// Lag is how far behind the daemon is: for a master the age of the
	// oldest connection update waiting to be sent, for a backup the time
	// since the last message was received.
	Lag         time.Duration
	LastMessage time.Time // zero: none yet
}

// BuildInfo identifies the running binary.
type BuildInfo struct {
	Version   string // module version or release ("(devel)" for a source build)
	Revision  string // VCS revision, if known
	GoVersion string
	Started   time.Time // when the daemon started
}
