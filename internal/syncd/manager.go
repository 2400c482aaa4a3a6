package syncd

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"golvs/internal/clock"
	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/ipvsadm"
	"golvs/internal/ipvssync"
)

// Config configures a Manager. Engine and Control are required; the zero
// values of the others are the kernel's behaviour.
type Config struct {
	// Engine is the data plane whose connections the master sends and
	// into whose connection table the backup writes.
	Engine *engine.Engine
	// Control holds the services and real servers the backup binds
	// synced connections to.
	Control *control.Control
	// Clock must be the engine's clock (nil: clock.Real).
	Clock clock.Clock
	// Log receives the daemons' starts, stops and (rate-limited)
	// errors; nil discards them.
	Log *slog.Logger

	// Sysctls are the sync sysctls (nil: ipvssync.DefaultSysctls).
	Sysctls *ipvssync.Sysctls
	// RingSize is the size of each data-path worker's ring (0:
	// engine.DefaultSyncRing).
	RingSize int

	// Peers (GoLVS, not in the kernel): when set, a master sends its
	// messages to each of these by unicast instead of to the multicast
	// group, and a backup listens for unicast messages on the sync port
	// (of ListenAddr) instead of joining the group, and accepts them
	// only from these addresses. A peer's port 0 means the daemon's
	// port (--mcast-port, 8848 by default).
	Peers []netip.AddrPort
	// ListenAddr is the address a backup listens on with Peers
	// (invalid: all of the host's addresses).
	ListenAddr netip.Addr

	// Keys (GoLVS) turns authentication on: a master signs its messages
	// with the first key (HMAC-SHA-256-128, see ipvssync.Signer), and a
	// backup refuses messages that are not signed with one of them, or
	// are replayed or stale. Without keys the messages are the kernel's,
	// byte for byte.
	Keys []ipvssync.Key
	// MaxAge bounds the age of a signed message a backup accepts (0:
	// ipvssync.DefaultMaxAge).
	MaxAge time.Duration
}

// Manager runs the connection-sync daemons of a director: at most one
// master and one backup, as the kernel's ip_vs_sync.c (one thread each:
// sync_ports is 1). It is the hook through which ipvsadm's --start-daemon
// and --stop-daemon, and keepalived's lvs_sync_daemon, start and stop
// them. It is safe for concurrent use.
type Manager struct {
	cfg     Config
	clock   clock.Clock
	log     *slog.Logger
	sysctls ipvssync.Sysctls
	stats   counters

	mu     sync.Mutex
	master *master // guarded by mu
	backup *backup // guarded by mu
	closed bool    // guarded by mu
	// keepalived's lvs_sync_daemon (SetLVSSyncDaemon), guarded by mu.
	ka     *ipvsadm.DaemonConfig
	kaVRRP bool // the role follows a VRRP instance (SetRole)
	role   bool // the last SetRole: true for master
}

// New returns a Manager with no daemon running.
func New(cfg Config) (*Manager, error) {
	if cfg.Engine == nil || cfg.Control == nil {
		return nil, errors.New("syncd: Engine and Control are required")
	}
	m := &Manager{cfg: cfg, clock: cfg.Clock, log: cfg.Log, sysctls: ipvssync.DefaultSysctls()}
	if m.clock == nil {
		m.clock = clock.Real{}
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Sysctls != nil {
		m.sysctls = *cfg.Sysctls
	}
	if err := m.sysctls.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Keys) > 0 {
		if m.sysctls.Version != ipvssync.Version1 {
			return nil, fmt.Errorf("%w: authentication needs sync_version 1", ipvssync.ErrConfig)
		}
		// Check the keys now rather than at the first start.
		if _, err := ipvssync.NewVerifier(ipvssync.VerifierConfig{Keys: cfg.Keys, MaxAge: cfg.MaxAge}); err != nil {
			return nil, err
		}
	}
	for _, p := range cfg.Peers {
		if !p.Addr().IsValid() || p.Addr().IsMulticast() || p.Addr().IsUnspecified() {
			return nil, fmt.Errorf("%w: unicast peer %v", ipvssync.ErrConfig, p)
		}
	}
	return m, nil
}

// Start starts a daemon as ipvsadm --start-daemon does (the kernel's
// start_sync_thread): EEXIST if one of the same role runs, ENODEV if the
// interface does not exist; the defaults fill in what c leaves zero. A
// multicast group must be a multicast address.
func (m *Manager) Start(c ipvsadm.DaemonConfig) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.startLocked(c)
}

// Stop stops the daemon of the role state ("master" or "backup"): ESRCH
// if none runs. It returns once the daemon's goroutine has ended.
func (m *Manager) Stop(state string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopLocked(state)
}

// List returns the running daemons, master first, as ipvsadm -L --daemon
// shows them.
func (m *Manager) List() []ipvsadm.DaemonEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ipvsadm.DaemonEntry
	if m.master != nil {
		out = append(out, m.master.entry)
	}
	if m.backup != nil {
		out = append(out, m.backup.entry)
	}
	return out
}

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	s := m.stats.snapshot()
	m.mu.Lock()
	if m.master != nil {
		s.RingDrops += m.master.q.Drops()
	}
	m.mu.Unlock()
	return s
}

// SyncStats returns Stats as the control API's GET /v1/sync serves it.
func (m *Manager) SyncStats() any { return m.Stats() }

// SetLVSSyncDaemon applies keepalived's lvs_sync_daemon: c is its
// interface, sync ID, maxlen, port, TTL and group (State is ignored), nil
// when the configuration has none. Without a VRRP instance (vrrp false)
// the master and the backup run all the time; with one, the backup runs
// until SetRole(true) and the role then follows SetRole. Applying the same
// configuration again changes nothing; another one restarts the daemons.
func (m *Manager) SetLVSSyncDaemon(c *ipvsadm.DaemonConfig, vrrp bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c != nil && m.ka != nil && *c == *m.ka && vrrp == m.kaVRRP {
		return nil
	}
	if m.ka != nil {
		// keepalived stops its daemons before it starts others.
		for _, st := range []string{ipvsadm.DaemonMaster, ipvsadm.DaemonBackup} {
			if err := m.stopLocked(st); err != nil && !errors.Is(err, syscall.ESRCH) {
				return err
			}
		}
	}
	m.ka, m.kaVRRP = nil, vrrp
	if c == nil {
		return nil
	}
	cc := *c
	m.ka = &cc
	if !vrrp {
		return errors.Join(m.startRoleLocked(ipvsadm.DaemonMaster), m.startRoleLocked(ipvsadm.DaemonBackup))
	}
	if m.role {
		return m.startRoleLocked(ipvsadm.DaemonMaster)
	}
	return m.startRoleLocked(ipvsadm.DaemonBackup)
}

// SetRole is called by the VRRP instance that lvs_sync_daemon names on
// each transition: master true when it becomes MASTER, false when it
// leaves it (BACKUP, FAULT). As keepalived's ipvs_syncd_master and
// ipvs_syncd_backup, it stops the daemon of the other role and starts the
// one of the new role with lvs_sync_daemon's configuration. Without an
// lvs_sync_daemon that follows an instance it only records the role.
func (m *Manager) SetRole(master bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.role = master
	if m.ka == nil || !m.kaVRRP {
		return nil
	}
	stop, start := ipvsadm.DaemonMaster, ipvsadm.DaemonBackup
	if master {
		stop, start = start, stop
	}
	if err := m.stopLocked(stop); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return m.startRoleLocked(start)
}

// startRoleLocked starts keepalived's daemon of role st, unless one runs.
func (m *Manager) startRoleLocked(st string) error {
	c := *m.ka
	c.State = st
	if err := m.startLocked(c); err != nil && !errors.Is(err, syscall.EEXIST) {
		return err
	}
	return nil
}

// Close stops the daemons and waits for them. The Manager starts nothing
// afterwards.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for _, st := range []string{ipvsadm.DaemonMaster, ipvsadm.DaemonBackup} {
		if err := m.stopLocked(st); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	return nil
}

// errClosed is Start's error after Close.
var errClosed = errors.New("syncd: manager closed")

func (m *Manager) startLocked(c ipvsadm.DaemonConfig) error {
	if m.closed {
		return errClosed
	}
	if c.State != ipvsadm.DaemonMaster && c.State != ipvsadm.DaemonBackup {
		return fmt.Errorf("%w: daemon state %q, want master or backup", ipvssync.ErrConfig, c.State)
	}
	if c.MCastGroup.IsValid() && !c.MCastGroup.IsMulticast() {
		return fmt.Errorf("%w: sync group %v is not multicast", ipvssync.ErrConfig, c.MCastGroup)
	}
	if (c.State == ipvsadm.DaemonMaster && m.master != nil) || (c.State == ipvsadm.DaemonBackup && m.backup != nil) {
		return fmt.Errorf("%s sync daemon: %w", c.State, syscall.EEXIST)
	}
	ifi, err := net.InterfaceByName(c.MCastInterface)
	if err != nil || c.MCastInterface == "" {
		return fmt.Errorf("interface %q: %w", c.MCastInterface, syscall.ENODEV)
	}
	e := daemonEntry(c, ifi.MTU)
	log := m.log.With("role", c.State, "interface", e.MCastIfn, "syncid", e.SyncID)
	if c.State == ipvsadm.DaemonMaster {
		ms, err := m.startMaster(e, ifi, log)
		if err != nil {
			return fmt.Errorf("master sync daemon: %w", err)
		}
		m.master = ms
	} else {
		bk, err := m.startBackup(e, ifi, log)
		if err != nil {
			return fmt.Errorf("backup sync daemon: %w", err)
		}
		m.backup = bk
	}
	log.Info("sync daemon started", "group", e.MCastGroup, "port", e.MCastPort, "maxlen", e.SyncMaxLen,
		"peers", len(m.cfg.Peers), "authenticated", len(m.cfg.Keys) > 0)
	return nil
}

func (m *Manager) stopLocked(state string) error {
	switch state {
	case ipvsadm.DaemonMaster:
		if m.master == nil {
			break
		}
		m.master.stop()
		m.master = nil
		m.log.Info("sync daemon stopped", "role", state)
		return nil
	case ipvsadm.DaemonBackup:
		if m.backup == nil {
			break
		}
		m.backup.stop()
		m.backup = nil
		m.log.Info("sync daemon stopped", "role", state)
		return nil
	default:
		return fmt.Errorf("%w: daemon state %q, want master or backup", ipvssync.ErrConfig, state)
	}
	return fmt.Errorf("%s sync daemon: %w", state, syscall.ESRCH)
}

// daemonEntry is the daemon c with the kernel's defaults filled in, as
// -L --daemon lists it: the group 224.0.0.81, port 8848, TTL 1, and
// sync_maxlen (ipvssync.MaxLen of the interface's MTU).
func daemonEntry(c ipvsadm.DaemonConfig, mtu int) ipvsadm.DaemonEntry {
	e := ipvsadm.DaemonEntry{
		State:      c.State,
		MCastIfn:   c.MCastInterface,
		SyncID:     uint32(c.SyncID),
		MCastGroup: c.MCastGroup,
		MCastPort:  c.MCastPort,
		MCastTTL:   c.MCastTTL,
	}
	if !e.MCastGroup.IsValid() {
		e.MCastGroup = ipvssync.DefaultGroup
	}
	if e.MCastPort == 0 {
		e.MCastPort = ipvssync.DefaultPort
	}
	if e.MCastTTL == 0 {
		e.MCastTTL = ipvssync.DefaultTTL
	}
	role := ipvssync.RoleMaster
	if c.State == ipvsadm.DaemonBackup {
		role = ipvssync.RoleBackup
	}
	e.SyncMaxLen = uint16(ipvssync.MaxLen(role, e.MCastGroup.Is6(), mtu, int(c.SyncMaxLen)))
	return e
}

// peers returns the unicast destinations of a daemon on port.
func (m *Manager) peers(port uint16) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(m.cfg.Peers))
	for _, p := range m.cfg.Peers {
		if p.Port() == 0 {
			p = netip.AddrPortFrom(p.Addr(), port)
		}
		out = append(out, netip.AddrPortFrom(p.Addr().Unmap(), p.Port()))
	}
	return slices.Compact(out)
}

// randomID returns a random sender ID for a master's signer.
func randomID() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail (Go 1.24)
	return binary.BigEndian.Uint32(b[:])
}

// limiter lets a repeating error through once per interval.
type limiter struct {
	interval time.Duration
	mu       sync.Mutex
	last     time.Time // guarded by mu
}

// errLogInterval is how often a daemon logs a repeating error.
const errLogInterval = 10 * time.Second

func (l *limiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		return false
	}
	l.last = now
	return true
}
