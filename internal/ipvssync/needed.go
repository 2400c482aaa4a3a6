package ipvssync

import (
	"fmt"
	"time"

	"golvs/internal/conntable"
	"golvs/internal/proto"
)

// Sysctls are the sysctls of /proc/sys/net/ipv4/vs that decide what a
// master syncs (ipvs-sysctl.rst). The zero value is not the kernel's
// default: start from DefaultSysctls.
type Sysctls struct {
	// Version is sync_version: 1 (default) or 0.
	Version uint8
	// Threshold and Period are the two values of sync_threshold
	// (default "3 50"): a connection is synced when its packet count
	// modulo Period equals Threshold; with Period 0, only once, when
	// it equals Threshold.
	Threshold int
	Period    int
	// RefreshPeriod is sync_refresh_period (default 0, off): when set,
	// a connection is not synced again while its expiry time moved by
	// less than min(RefreshPeriod, max(timeout/2, 10 s)) since the last
	// sync, except for up to Retries retries RefreshPeriod/8 apart.
	RefreshPeriod time.Duration
	// Retries is sync_retries, 0 (default) to 3.
	Retries int
	// PersistMode is sync_persist_mode (default off): sync only the
	// templates of persistent services, not their connections.
	PersistMode bool
}

// DefaultSysctls returns the kernel's defaults (DEFAULT_SYNC_THRESHOLD 3,
// DEFAULT_SYNC_PERIOD 50, DEFAULT_SYNC_VER 1, DEFAULT_SYNC_REFRESH_PERIOD
// 0, DEFAULT_SYNC_RETRIES 0).
func DefaultSysctls() Sysctls {
	return Sysctls{Version: Version1, Threshold: 3, Period: 50}
}

// Validate refuses what the kernel's sysctl handlers refuse with EINVAL:
// a negative threshold or period, a threshold not below a non-zero period
// (proc_do_sync_threshold), retries outside 0..3, a version other than 0
// and 1 (proc_do_sync_mode), a negative refresh period.
func (s *Sysctls) Validate() error {
	if s.Threshold < 0 || s.Period < 0 || (s.Period != 0 && s.Threshold >= s.Period) {
		return fmt.Errorf("%w: sync_threshold %d %d", ErrConfig, s.Threshold, s.Period)
	}
	if s.Retries < 0 || s.Retries > 3 {
		return fmt.Errorf("%w: sync_retries %d", ErrConfig, s.Retries)
	}
	if s.Version > Version1 {
		return fmt.Errorf("%w: sync_version %d", ErrConfig, s.Version)
	}
	if s.RefreshPeriod < 0 {
		return fmt.Errorf("%w: sync_refresh_period %v", ErrConfig, s.RefreshPeriod)
	}
	return nil
}

// ConnInfo is what the master's decision reads of a connection or template
// (the fields of struct ip_vs_conn that ip_vs_sync_conn_needed and
// ip_vs_sync_conn use), and the sync bookkeeping it updates. The caller
// keeps OldState and SyncEndtime with the connection between packets.
type ConnInfo struct {
	Proto    uint8
	Flags    conntable.Flags
	State    uint8
	OldState uint8 // the state when last synced (cp->old_state)
	Timeout  time.Duration
	IPv6     bool // af is IPv6 (version 0 does not carry it)

	// SyncEndtime is cp->sync_endtime: the expiry time last synced,
	// (now+timeout) rounded down to a multiple of 4 ns, with the number
	// of retries in its low 2 bits. A new connection starts with
	// InitialSyncEndtime(created).
	SyncEndtime int64

	// InPkts is cp->in_pkts; SyncChain increments it for a template it
	// reaches through a controlled connection.
	InPkts uint32

	// InPersistence is in_persistence(cp): the connection is controlled,
	// directly or through other connections, by a template. SyncChain
	// sets it.
	InPersistence bool
}

// InitialSyncEndtime is the sync_endtime of a connection created at now
// (ip_vs_conn_new: jiffies & ~3).
func InitialSyncEndtime(now int64) int64 { return now &^ 3 }

// tenSeconds is the floor of the "half timeout" of the refresh rule
// (10UL * HZ in ip_vs_sync_conn_needed).
const tenSeconds = int64(10 * time.Second)

// Needed is ip_vs_sync_conn_needed: whether the master syncs c now, on a
// packet that made its count pkts (ip_vs_in passes ++cp->in_pkts, or
// Threshold for a one-packet connection). now is a monotonic time in
// nanoseconds (clock.Nanotime), which stands for the kernel's jiffies: the
// rules are the same, at a finer grain. When it decides to sync (and in
// the forced cases) it records the sync in c (OldState = State,
// SyncEndtime) as the kernel's cmpxchg does; the caller owns c for the
// time of the call, so the exchange always succeeds.
//
// The rules, in order:
//   - a template is eligible in any state and never forced;
//   - with PersistMode, a connection in persistence is never synced;
//   - a TCP connection is eligible only in ESTABLISHED, FIN_WAIT, CLOSE,
//     CLOSE_WAIT and TIME_WAIT, an SCTP one in ESTABLISHED,
//     SHUTDOWN_SENT, SHUTDOWN_RECEIVED, SHUTDOWN_ACK_SENT and CLOSED; a
//     change of state since the last sync (State != OldState) to any of
//     those but ESTABLISHED is synced at once, skipping the rules below;
//     UDP and other protocols have one state and are never forced;
//   - with RefreshPeriod set: not synced if the expiry time moved by less
//     than min(RefreshPeriod, max(Timeout/2, 10 s)) since the last sync,
//     unless fewer than Retries retries were made and RefreshPeriod/8 has
//     passed since that sync, which counts a retry;
//   - with Period set: a connection (not a template) is synced when
//     pkts % Period == Threshold; with Period 0 and no RefreshPeriod,
//     anything (templates too) only when pkts == Threshold.
//
// A change to ESTABLISHED is not forced: it is synced by the packet count
// rule, and the return value is true only if that rule passes. ONE_PACKET
// connections are not looked at here (the callers skip them).
func Needed(c *ConnInfo, pkts int, now int64, s *Sysctls) bool {
	orig := c.SyncEndtime
	timeout := int64(c.Timeout)
	n := (now + timeout) &^ 3
	switch {
	case c.Flags&conntable.FlagTemplate != 0:
	case s.PersistMode && c.InPersistence:
		return false
	case c.Proto == proto.TCP || c.Proto == proto.SCTP:
		est := uint8(proto.TCPEstablished)
		if c.Proto == proto.SCTP {
			est = uint8(proto.SCTPEstablished)
		}
		if !syncState(c.Proto, c.State) {
			return false
		}
		if c.State != c.OldState && c.State != est {
			return set(c, n)
		}
	}

	if rp := int64(s.RefreshPeriod); rp > 0 {
		diff := n - orig
		if diff < 0 {
			diff = -diff
		}
		if diff < min(rp, max(timeout>>1, tenSeconds)) {
			retries := int(orig & 3)
			if retries >= s.Retries {
				return false
			}
			if now < orig-timeout+rp>>3 {
				return false
			}
			n |= int64(retries + 1)
		}
	}
	if s.Period > 0 {
		if c.Flags&conntable.FlagTemplate == 0 && pkts%s.Period != s.Threshold {
			return false
		}
	} else if s.RefreshPeriod <= 0 && pkts != s.Threshold {
		return false
	}
	return set(c, n)
}

// set is the label "set" of ip_vs_sync_conn_needed, whose "return n ==
// orig || force" is always true here: the cmpxchg cannot fail.
func set(c *ConnInfo, n int64) bool {
	c.OldState = c.State
	c.SyncEndtime = n
	return true
}

// syncState reports whether a TCP or SCTP connection in state st may be
// synced.
func syncState(p, st uint8) bool {
	const (
		tcpSync = 1<<proto.TCPEstablished | 1<<proto.TCPFinWait | 1<<proto.TCPClose |
			1<<proto.TCPCloseWait | 1<<proto.TCPTimeWait
		sctpSync = 1<<proto.SCTPEstablished | 1<<proto.SCTPShutdownSent |
			1<<proto.SCTPShutdownReceived | 1<<proto.SCTPShutdownAckSent | 1<<proto.SCTPClosed
	)
	if st >= 32 {
		return false
	}
	if p == proto.TCP {
		return tcpSync>>st&1 != 0
	}
	return sctpSync>>st&1 != 0
}

// SyncChain is ip_vs_sync_conn's walk over the connection a packet hit
// (chain[0]) and its controllers (chain[i+1] controls chain[i]: an FTP
// data connection's control connection, a persistence template), for the
// version in s. pkts is the packet count of chain[0] as ip_vs_in computes
// it: ++cp->in_pkts, or Threshold for a ONE_PACKET connection. It returns
// a mask of the links to send (bit i for chain[i]) and updates each link
// it decides on (OldState, SyncEndtime; InPkts of a template reached as
// a controller).
//
// Version 1: each link is decided by Needed, except ONE_PACKET ones,
// which are never sent; then, sent or not, its controller is considered,
// with pkts = ++InPkts if the controller is a template and Threshold
// otherwise. So with the default sysctls the template of a persistent
// service is sent on every packet of its connections (the kernel does
// this; sync_refresh_period is the knob that tames it).
//
// Version 0: an IPv6 or ONE_PACKET link is not sent and ends the walk, as
// does a link Needed declines; a link that is sent goes on to its
// controller as in version 1.
//
// The walk ends after 64 links (chains are 1 to 3 links long).
func SyncChain(chain []ConnInfo, pkts int, now int64, s *Sysctls) (send uint64) {
	for i := range min(len(chain), 64) {
		if i > 0 {
			if c := &chain[i]; c.Flags&conntable.FlagTemplate != 0 {
				c.InPkts++
				pkts = int(c.InPkts)
			} else {
				pkts = s.Threshold
			}
		}
		c := &chain[i]
		c.InPersistence = false
		for j := i + 1; j < len(chain); j++ {
			if chain[j].Flags&conntable.FlagTemplate != 0 {
				c.InPersistence = true
				break
			}
		}
		if s.Version == Version0 {
			if c.IPv6 || c.Flags&conntable.FlagOnePacket != 0 || !Needed(c, pkts, now, s) {
				return send
			}
			send |= 1 << i
			continue
		}
		if c.Flags&conntable.FlagOnePacket == 0 && Needed(c, pkts, now, s) {
			send |= 1 << i
		}
	}
	return send
}
