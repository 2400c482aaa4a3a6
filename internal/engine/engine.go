package engine

import (
	"net/netip"
	"sync/atomic"
	"time"

	"golvs/internal/clock"
	"golvs/internal/conntable"
	"golvs/internal/control"
	"golvs/internal/ipvssync"
	"golvs/internal/proto"
	"golvs/internal/service"
	"golvs/internal/stats"
)

// Settings are the sysctls of /proc/sys/net/ipv4/vs that change per-packet
// decisions (ipvs-features.md §3.9). The zero value is not the kernel's
// default: use DefaultSettings.
type Settings struct {
	// ExpireNodestConn: a packet of a connection whose real server was
	// deleted expires the connection at once and is scheduled anew
	// (expire_nodest_conn). Off: such packets are dropped until the
	// connection times out.
	ExpireNodestConn bool
	// ExpireQuiescentTemplate: a persistence template pointing to a real
	// server of weight 0 is invalid at its next use, so persistent clients
	// move off a quiesced server (expire_quiescent_template).
	ExpireQuiescentTemplate bool
	// ConnReuseMode is the conn_reuse_mode bitmap (default 1): bit 0
	// reschedules a new connection that reuses the ports of one in
	// TIME_WAIT or CLOSE; bit 1 also one in FIN_WAIT of a DR/TUN server.
	// Unlike the kernel there is no netfilter conntrack here, so the
	// rescheduling never has to drop the SYN (no 1 s delay).
	ConnReuseMode uint8
	// SecureTCP selects the secure_tcp state table (tcp_states_dos). The
	// kernel's automatic modes depend on its memory; here it is on or off.
	SecureTCP bool
	// SloppyTCP creates connections on any non-RST TCP packet, not only on
	// SYN (sloppy_tcp); SloppySCTP likewise on any non-ABORT chunk.
	SloppyTCP, SloppySCTP bool
}

// DefaultSettings returns the kernel's defaults.
func DefaultSettings() Settings { return Settings{ConnReuseMode: 1} }

// Config configures an Engine.
type Config struct {
	// Control is the service configuration the engine reads.
	Control *control.Control
	// Clock is the time source; nil means clock.Real.
	Clock clock.Clock
	// MaxConns bounds the connection table, templates included (default
	// 1<<20).
	MaxConns int
	// TableShards is the number of connection-table shards (default 16).
	TableShards int
	// Seed seeds the connection-table hash; 0 picks a random seed.
	Seed uint64
	// ExpireBudget is how many due entries one batch expires at most
	// (default 64): expiry is amortised over the traffic, and Tick expires
	// the rest when the director is idle.
	ExpireBudget int
}

// Engine makes IPVS's per-packet decisions. It is safe for concurrent use by
// several Workers.
type Engine struct {
	ctl      *control.Control
	reg      *service.Registry
	total    *stats.Counters
	conns    *conntable.Table
	clock    clock.Clock
	budget   int
	settings atomic.Pointer[Settings]
	timeouts atomic.Pointer[proto.Timeouts]
	syncq    atomic.Pointer[SyncQueue] // non-nil while a master sync daemon runs

	// Expiry of scheduler state and of the trash, run by Tick.
	nextSchedGC int64 // owned by the Tick caller
	nextTrash   int64 // owned by the Tick caller
}

// New returns an engine over cfg.Control.
func New(cfg Config) (*Engine, error) {
	e := &Engine{
		ctl:    cfg.Control,
		reg:    cfg.Control.Registry(),
		total:  cfg.Control.Total(),
		clock:  cfg.Clock,
		budget: cfg.ExpireBudget,
	}
	if e.clock == nil {
		e.clock = clock.Real{}
	}
	if e.budget <= 0 {
		e.budget = 64
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 1 << 20
	}
	if cfg.TableShards <= 0 {
		cfg.TableShards = 16
	}
	t, err := conntable.New(conntable.Config{
		Max:      cfg.MaxConns,
		Shards:   cfg.TableShards,
		Seed:     cfg.Seed,
		OnRemove: e.onRemove,
	})
	if err != nil {
		return nil, err
	}
	e.conns = t
	s := DefaultSettings()
	e.settings.Store(&s)
	to := proto.DefaultTimeouts()
	e.timeouts.Store(&to)
	now := e.clock.Nanotime()
	e.nextSchedGC = now + int64(schedGCInterval)
	e.nextTrash = now + int64(control.TrashInterval)
	return e, nil
}

// Conns returns the connection table (for listings and the packet path's
// sharding function).
func (e *Engine) Conns() *conntable.Table { return e.conns }

// Settings returns the current settings.
func (e *Engine) Settings() Settings { return *e.settings.Load() }

// SetSettings replaces the settings; packets see them from their next batch.
func (e *Engine) SetSettings(s Settings) { e.settings.Store(&s) }

// Timeouts returns the current protocol timeouts.
func (e *Engine) Timeouts() proto.Timeouts { return *e.timeouts.Load() }

// SetTimeouts applies ipvsadm --set tcp tcpfin udp (0 keeps a value).
// Existing connections keep their timers until their next packet, as in the
// kernel.
func (e *Engine) SetTimeouts(tcp, tcpfin, udp time.Duration) error {
	t := *e.timeouts.Load()
	if err := t.Set(tcp, tcpfin, udp); err != nil {
		return err
	}
	e.timeouts.Store(&t)
	return nil
}

// onRemove is the connection table's callback when an entry goes: the
// real server's counts drop (ip_vs_unbind_dest).
func (e *Engine) onRemove(c *conntable.Conn, forced bool) {
	if d := e.reg.Lookup(c.DestID); d != nil {
		d.Unbind(c.Flags&conntable.FlagTemplate != 0, c.Flags&conntable.FlagInactive != 0)
	}
}

// schedGCInterval is the period of the lblc/lblcr cache collection
// (CHECK_EXPIRE_INTERVAL, 60 s).
const schedGCInterval = 60 * time.Second

// tickBudget is how many connections one Tick expires at most, so that a
// housekeeping tick never stalls for long even after a burst of expiries;
// the next tick continues.
const tickBudget = 1 << 16

// Tick runs the housekeeping that the kernel does with timers: connection
// expiry on an idle director, the schedulers' cache collection every 60 s,
// the destination trash every 60 s, and the rate estimation (each stats
// object every 2 s). The owner calls it periodically, at least every
// estimator.Slot (40 ms), from one goroutine. It returns the number of
// connections expired.
func (e *Engine) Tick() int {
	now := e.clock.Nanotime()
	n := e.conns.Expire(now, tickBudget)
	e.ctl.TickEstimators(now)
	if now >= e.nextSchedGC {
		e.nextSchedGC = now + int64(schedGCInterval)
		for _, s := range e.ctl.Snapshot().Services() {
			if x, ok := s.Sched.(service.Expirer); ok {
				x.Expire(now)
			}
		}
	}
	if now >= e.nextTrash {
		e.nextTrash = now + int64(control.TrashInterval)
		e.ctl.CollectTrash()
	}
	return n
}

// Worker is one data-path worker's handle on the engine: its shard of the
// counters and the time of its current batch. A Worker is owned by one
// goroutine.
type Worker struct {
	e   *Engine
	id  int
	now int64
	set *Settings
	to  *proto.Timeouts
	sp  service.Packet // reused for scheduler calls, so they do not allocate

	// The master sync daemon's queue (nil when none runs), this
	// worker's ring in it, and the decision's scratch (see sync.go).
	sq    *SyncQueue
	ring  *syncRing
	chain [2]ipvssync.ConnInfo

	drops [NumDropReasons]atomic.Uint64
}

// NewWorker returns the handle of worker id (0-based; it picks the counter
// shard).
func (e *Engine) NewWorker(id int) *Worker { return &Worker{e: e, id: id} }

// Begin starts a batch: it reads the clock, the settings and whether a
// master sync daemon runs once, and expires a few due connections
// (amortised expiry).
func (w *Worker) Begin() {
	w.now = w.e.clock.Nanotime()
	w.set = w.e.settings.Load()
	w.to = w.e.timeouts.Load()
	w.syncBegin()
	w.e.conns.Expire(w.now, w.e.budget)
}

// Now returns the time of the current batch.
func (w *Worker) Now() int64 { return w.now }

// Drops returns the worker's drop counters by reason.
func (w *Worker) Drops() [NumDropReasons]uint64 {
	var out [NumDropReasons]uint64
	for i := range w.drops {
		out[i] = w.drops[i].Load()
	}
	return out
}

func (w *Worker) drop(r DropReason) Decision {
	w.drops[r].Add(1)
	return Decision{Verdict: Drop, Reason: r}
}

// snet masks a client address with the service's persistence granularity.
func snet(a netip.Addr, cfg service.Config) netip.Addr {
	if a.Is4() {
		b := a.As4()
		m := cfg.Netmask
		b[0] &= byte(m >> 24)
		b[1] &= byte(m >> 16)
		b[2] &= byte(m >> 8)
		b[3] &= byte(m)
		return netip.AddrFrom4(b)
	}
	bits := int(cfg.Netmask)
	if bits <= 0 || bits > 128 {
		bits = 128
	}
	p, _ := a.Prefix(bits)
	return p.Addr()
}
