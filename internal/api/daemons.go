package api

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"

	"golvs/internal/control"
	"golvs/internal/ipvsadm"
)

// The sync daemon's defaults (include/net/ip_vs.h, ip_vs_sync.c): the
// multicast group 224.0.0.81 (IP_VS_SYNC_GROUP), port 8848
// (IP_VS_SYNC_PORT), TTL 1, and the master's message size 1500 - 28
// (an Ethernet MTU less the IPv4 and UDP headers), whatever the MTU.
var defaultSyncGroup = netip.AddrFrom4([4]byte{224, 0, 0, 81})

const (
	defaultSyncPort = 8848
	defaultSyncTTL  = 1
	// syncHeaders are the IPv4 and UDP headers around a sync message
	// (20 + 8); IPv6 groups take 40 + 8.
	syncHeaders4, syncHeaders6 = 28, 48
	ethMTU                     = 1500
	maxSyncLen                 = 65535
	// minBackupSyncLen is the smallest buffer a backup accepts
	// (ip_vs_sync.c: max(val, 1024)).
	minBackupSyncLen = 1024
)

// Daemons runs the connection-sync daemons (package syncd's Manager, the
// kernel's ip_vs_sync.c). Its errors wrap the kernel's: syscall.EEXIST
// when a daemon of the role runs, syscall.ENODEV for an unknown
// interface, syscall.ESRCH when none of the role runs. The Server checks
// the state and the group before it calls Start or Stop.
type Daemons interface {
	Start(c ipvsadm.DaemonConfig) error
	Stop(state string) error
	// List returns the running daemons, master first, with the
	// defaults filled in.
	List() []ipvsadm.DaemonEntry
}

// SyncStats is what a Daemons may also have: its counters, as GET
// /v1/sync returns them (a value that encodes to JSON).
type SyncStats interface {
	SyncStats() any
}

// startDaemon starts a connection-sync daemon, or without a Daemons hook
// records it, as the kernel's start_sync_thread validates it: EEXIST when
// one of the same role runs, ENODEV when the interface does not exist,
// the defaults of the group, port, TTL and message size filled in as -L
// --daemon shows them. Daemons are not kept across restarts (nor are the
// kernel's).
func (s *Server) startDaemon(c ipvsadm.DaemonConfig) error {
	if c.State != ipvsadm.DaemonMaster && c.State != ipvsadm.DaemonBackup {
		return badRequest("daemon state %q, want master or backup", c.State)
	}
	if c.MCastGroup.IsValid() && !c.MCastGroup.IsMulticast() {
		return fmt.Errorf("sync group %v is not multicast: %w", c.MCastGroup, control.ErrInvalid)
	}
	if s.syncd != nil {
		return s.syncd.Start(c)
	}
	s.dmu.Lock()
	defer s.dmu.Unlock()
	for _, d := range s.daemons {
		if d.State == c.State {
			return fmt.Errorf("%s sync daemon: %w", c.State, syscall.EEXIST)
		}
	}
	ifi, err := net.InterfaceByName(c.MCastInterface)
	if err != nil || c.MCastInterface == "" {
		return fmt.Errorf("interface %q: %w", c.MCastInterface, syscall.ENODEV)
	}
	e := ipvsadm.DaemonEntry{
		State:      c.State,
		MCastIfn:   c.MCastInterface,
		SyncID:     uint32(c.SyncID),
		SyncMaxLen: c.SyncMaxLen,
		MCastGroup: c.MCastGroup,
		MCastPort:  c.MCastPort,
		MCastTTL:   c.MCastTTL,
	}
	if !e.MCastGroup.IsValid() {
		e.MCastGroup = defaultSyncGroup
	}
	if e.MCastPort == 0 {
		e.MCastPort = defaultSyncPort
	}
	if e.MCastTTL == 0 {
		e.MCastTTL = defaultSyncTTL
	}
	hdr := syncHeaders4
	if e.MCastGroup.Is6() {
		hdr = syncHeaders6
	}
	switch {
	case e.SyncMaxLen == 0 && c.State == ipvsadm.DaemonMaster:
		e.SyncMaxLen = uint16(ethMTU - hdr)
	case e.SyncMaxLen == 0:
		mtu := min(max(ifi.MTU, ethMTU), maxSyncLen)
		e.SyncMaxLen = uint16(mtu - hdr)
	case c.State == ipvsadm.DaemonBackup:
		e.SyncMaxLen = uint16(min(max(int(e.SyncMaxLen), minBackupSyncLen), maxSyncLen-hdr))
	default:
		e.SyncMaxLen = uint16(min(int(e.SyncMaxLen), maxSyncLen-hdr))
	}
	s.daemons = append(s.daemons, e)
	return nil
}

// stopDaemon stops (or forgets) the daemon of the role state: ESRCH if
// none runs.
func (s *Server) stopDaemon(state string) error {
	if state != ipvsadm.DaemonMaster && state != ipvsadm.DaemonBackup {
		return badRequest("daemon state %q, want master or backup", state)
	}
	if s.syncd != nil {
		return s.syncd.Stop(state)
	}
	s.dmu.Lock()
	defer s.dmu.Unlock()
	for i, d := range s.daemons {
		if d.State == state {
			s.daemons = append(s.daemons[:i:i], s.daemons[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("%s sync daemon: %w", state, syscall.ESRCH)
}

// daemonList returns the running daemons, master first, as the kernel
// dumps them.
func (s *Server) daemonList() []ipvsadm.DaemonEntry {
	if s.syncd != nil {
		return s.syncd.List()
	}
	s.dmu.Lock()
	defer s.dmu.Unlock()
	var out []ipvsadm.DaemonEntry
	for _, role := range []string{ipvsadm.DaemonMaster, ipvsadm.DaemonBackup} {
		for _, d := range s.daemons {
			if d.State == role {
				out = append(out, d)
			}
		}
	}
	return out
}

// getSyncStats is GET /v1/sync: the sync daemons' counters, or ESRCH
// (404 no_daemon) when lvsd runs none (no Daemons hook with counters).
func (s *Server) getSyncStats(w http.ResponseWriter, r *http.Request) {
	st, ok := s.syncd.(SyncStats)
	if !ok {
		writeError(w, fmt.Errorf("sync daemons: %w", syscall.ESRCH))
		return
	}
	writeJSON(w, http.StatusOK, st.SyncStats())
}
