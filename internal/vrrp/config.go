package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// State is an instance's (or a sync group's) VRRP state. keepalived adds
// FAULT and STOP to the RFC's Initialize, Backup and Master.
type State uint8

// The states. Init is both the RFC's Initialize and "not started yet".
const (
	Init State = iota
	Backup
	Master
	Fault
	Stop
)

// String returns keepalived's name of the state, as notify scripts get it.
func (s State) String() string {
	switch s {
	case Init:
		return "INIT"
	case Backup:
		return "BACKUP"
	case Master:
		return "MASTER"
	case Fault:
		return "FAULT"
	case Stop:
		return "STOP"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Priorities with a meaning (RFC 5798 §5.2.4; keepalived VRRP_PRIO_*).
const (
	// PriorityStop is sent by a master that resigns (shutdown, FAULT).
	PriorityStop = 0
	// PriorityDefault is keepalived's default priority.
	PriorityDefault = 100
	// PriorityOwner is the address owner's; trackers never change it.
	PriorityOwner = 255
)

// Defaults of keepalived 2.2.7 (global_data.c, vrrp_data.c; keepalived.conf(5)).
const (
	DefaultAdvertInt        = time.Second     // advert_int 1
	DefaultDownTimerAdverts = 3               // vrrp_down_timer_adverts, the RFCs' 3
	DefaultGARPMasterDelay  = 5 * time.Second // vrrp_garp_master_delay
	DefaultGARPMasterRepeat = 5               // vrrp_garp_master_repeat
	maxDownTimerAdverts     = 100             // keepalived's [1:100]
	maxPreemptDelay         = 1000 * time.Second
	maxPassLen              = AuthDataLen // "Only the first eight (8) characters are used."
)

// Config is one vrrp_instance's protocol configuration. The zero value of
// every field is keepalived's default; NewInstance normalises a Config as
// Normalize does (call Normalize to get the warnings keepalived logs).
type Config struct {
	// Name is the instance name (vrrp_instance NAME); Actions carry it.
	Name string
	// VRID is virtual_router_id, 1..255 (required).
	VRID uint8
	// Priority is priority, 1..255. Zero derives it from InitialState as
	// keepalived does: 255 for MASTER, 100 otherwise.
	Priority uint8
	// AdvertInt is advert_int (default 1 s): whole seconds up to 255 s for
	// VRRPv2, centiseconds up to 40.95 s for VRRPv3; other values are
	// rounded as keepalived does.
	AdvertInt time.Duration
	// Version is 2 or 3; zero is keepalived's default: 3 for IPv6, else 2
	// (global vrrp_version).
	Version uint8
	// LocalAddr is the instance's primary address (the interface's, or
	// mcast_src_ip / unicast_src_ip): the source of its adverts and the
	// tie-break between masters of equal priority (required).
	LocalAddr netip.Addr
	// VIPs are the virtual_ipaddress entries listed in adverts (not
	// virtual_ipaddress_excluded), all of LocalAddr's family. keepalived
	// moves what does not fit in a 1500-byte packet to the excluded list;
	// Normalize drops them from VIPs with a warning.
	VIPs []netip.Addr
	// InitialState is state: Master or Backup. Init (zero) derives it from
	// Priority: Master for 255, Backup otherwise.
	InitialState State
	// NoPreempt is nopreempt: a higher-priority backup does not take over
	// from a lower-priority master. keepalived ignores it (with a warning)
	// with InitialState Master or Priority 255.
	NoPreempt bool
	// PreemptDelay is preempt_delay (0..1000 s): a backup accepts adverts
	// of a lower-priority master for this long after startup, and after
	// first seeing a lower-priority master once back in BACKUP, before it
	// preempts. Cleared with InitialState Master or NoPreempt.
	PreemptDelay time.Duration
	// UnicastPeers are unicast_peer; adverts go to them instead of the
	// multicast group when non-empty.
	UnicastPeers []netip.Addr
	// CheckUnicastSrc is check_unicast_src / vrrp_check_unicast_src:
	// adverts from addresses not in UnicastPeers are discarded.
	CheckUnicastSrc bool
	// NoAccept is no_accept (keepalived's default is accept outside strict
	// mode). The state machine does not use it: the caller installs the
	// firewall rule that drops traffic to the VIPs of a non-owner master.
	NoAccept bool
	// Auth and AuthPass are VRRPv2's authentication { auth_type PASS;
	// auth_pass } (at most 8 bytes are used). AuthAH is refused. Ignored,
	// with a warning, for VRRPv3.
	Auth     AuthType
	AuthPass string
	// DownTimerAdverts is down_timer_adverts / vrrp_down_timer_adverts
	// (1..100, default 3): the advert intervals in Master_Down_Interval.
	DownTimerAdverts int
	// LowerPrioNoAdvert is lower_prio_no_advert: a master receiving a
	// lower-priority advert does not answer it with its own.
	LowerPrioNoAdvert bool
	// HigherPrioSendAdvert is higher_prio_send_advert: a master receiving a
	// higher-priority advert sends one more advert before going BACKUP, so
	// that the other master re-sends its gratuitous ARPs.
	HigherPrioSendAdvert bool
	// SkipCheckAdvAddr is skip_check_adv_addr: a backup does not re-check
	// the address list of adverts from the master it already knows.
	SkipCheckAdvAddr bool
	// V3ChecksumAsV2 is v3_checksum_as_v2: see Codec (Instance.Codec).
	V3ChecksumAsV2 bool
	// GARP is the gratuitous ARP / unsolicited NA schedule.
	GARP GARPConfig
}

// GARPConfig is the instance's gratuitous ARP (IPv4) / unsolicited
// neighbour advert (IPv6) schedule (garp_master_* in vrrp_instance, or the
// vrrp_garp_* globals). The zero value is keepalived's default: 5 packets
// per address on becoming master and 5 more 5 s later, no refresh, the same
// on receiving a lower-priority advert as master. A negative duration or
// count means "none" (keepalived's 0).
type GARPConfig struct {
	MasterDelay    time.Duration // garp_master_delay: second burst after becoming master (default 5 s)
	MasterRepeat   int           // garp_master_repeat: packets per address per burst (default 5)
	Refresh        time.Duration // garp_master_refresh: periodic burst while master (default none)
	RefreshRepeat  int           // garp_master_refresh_repeat (default 1)
	LowerPrioDelay time.Duration // garp_lower_prio_delay (default MasterDelay)
	// LowerPrioRepeat is garp_lower_prio_repeat (default MasterRepeat).
	LowerPrioRepeat int
}

// Errors of NewInstance (and Normalize) for configurations keepalived
// refuses.
var (
	ErrConfig = errors.New("vrrp: invalid configuration")
)

// Normalize returns c with keepalived's defaults filled in and its
// configuration-time corrections applied (vrrp_complete_instance in
// vrrp.c), with one warning per correction, worded after keepalived's log
// messages. It fails, wrapping ErrConfig, where keepalived refuses the
// instance: no VRID, no or an invalid LocalAddr, VIPs of another family,
// VRRPv3 without VIPs, AH authentication (not implemented here).
func (c Config) Normalize() (Config, []string, error) {
	var warn []string
	w := func(format string, args ...any) {
		warn = append(warn, fmt.Sprintf("(%s) ", c.Name)+fmt.Sprintf(format, args...))
	}
	fail := func(format string, args ...any) (Config, []string, error) {
		return c, warn, fmt.Errorf("%w: (%s) %s", ErrConfig, c.Name, fmt.Sprintf(format, args...))
	}
	if c.VRID == 0 {
		return fail("the virtual router id must be set")
	}
	fam := FamilyOf(c.LocalAddr)
	if fam == 0 {
		return fail("no source address")
	}
	for _, v := range c.VIPs {
		if FamilyOf(v) != fam {
			return fail("VIP %v is not of the instance's address family", v)
		}
	}
	for _, p := range c.UnicastPeers {
		if FamilyOf(p) != fam {
			return fail("unicast peer %v is not of the instance's address family", p)
		}
	}
	switch c.Version {
	case 0:
		c.Version = 2
		if fam == IPv6 {
			c.Version = 3
		}
	case 2, 3:
	default:
		return fail("Version must be either 2 or 3")
	}
	if len(c.VIPs) == 0 {
		if c.Version == 3 {
			return fail("No VIP specified; at least one is required")
		}
		w("No VIP specified; at least one is sensible")
	}
	if c.InitialState != Init && c.InitialState != Master && c.InitialState != Backup {
		return fail("initial state %v is neither MASTER nor BACKUP", c.InitialState)
	}
	if c.Priority == 0 {
		c.Priority = PriorityDefault
		if c.InitialState == Master {
			c.Priority = PriorityOwner
		}
	}
	if c.InitialState == Init {
		c.InitialState = Backup
		if c.Priority == PriorityOwner {
			c.InitialState = Master
		}
	}
	switch {
	case c.Auth == AuthNone:
	case c.Version == 3:
		w("VRRP version 3 does not support authentication. Ignoring.")
		c.Auth, c.AuthPass = AuthNone, ""
	case c.Auth == AuthAH:
		return fail("AH authentication is not implemented")
	case c.Auth != AuthPass:
		return fail("invalid authentication type %d", c.Auth)
	case c.AuthPass == "":
		w("Authentication specified but no password given. Ignoring")
		c.Auth = AuthNone
	case len(c.AuthPass) > maxPassLen:
		c.AuthPass = c.AuthPass[:maxPassLen]
	}
	// "Count IP Addrs field is 8 bits wide" and keepalived fits the list
	// in a packet of DEFAULT_MTU 1500 with Ethernet (14), IP (20 or 40),
	// VRRP (8) and v2 authentication (8) headers.
	maxAddr := (1500 - 14 - 20 - HeaderLen - AuthDataLen) / 4
	if fam == IPv6 {
		maxAddr = (1500 - 14 - 40 - HeaderLen) / 16
	}
	maxAddr = min(maxAddr, MaxAddrs)
	if len(c.VIPs) > maxAddr {
		w("Number of VIPs (%d) exceeds maximum/space available in packet (max %d addresses) - excess moved to eVIPs", len(c.VIPs), maxAddr)
		c.VIPs = c.VIPs[:maxAddr:maxAddr]
	}
	if c.Priority == PriorityOwner && c.NoPreempt {
		w("nopreempt is incompatible with priority %d. resetting nopreempt", PriorityOwner)
		c.NoPreempt = false
	}
	if c.InitialState == Master {
		if c.NoPreempt {
			w("Warning - nopreempt will not work with initial state MASTER - clearing")
			c.NoPreempt = false
		}
		if c.PreemptDelay != 0 {
			w("Warning - preempt delay will not work with initial state MASTER - clearing")
			c.PreemptDelay = 0
		}
	}
	if c.PreemptDelay < 0 || c.PreemptDelay > maxPreemptDelay {
		w("Preempt_delay not valid! must be between 0-%d", int(maxPreemptDelay/time.Second))
		c.PreemptDelay = 0
	}
	if c.PreemptDelay != 0 && c.NoPreempt {
		w("preempt_delay is incompatible with nopreempt mode - resetting")
		c.PreemptDelay = 0
	}
	if c.DownTimerAdverts == 0 {
		c.DownTimerAdverts = DefaultDownTimerAdverts
	} else if c.DownTimerAdverts < 1 || c.DownTimerAdverts > maxDownTimerAdverts {
		w("Invalid down_timer_adverts [1:100] '%d'", c.DownTimerAdverts)
		c.DownTimerAdverts = DefaultDownTimerAdverts
	}
	c.AdvertInt = normalizeAdvertInt(c.AdvertInt, c.Version, w)
	c.GARP = c.GARP.normalize()
	return c, warn, nil
}

// normalizeAdvertInt applies keepalived's range and rounding of advert_int
// (vrrp_complete_instance): VRRPv2 whole seconds below 256 s, VRRPv3
// centiseconds below 40.96 s, rounding half up, never zero.
func normalizeAdvertInt(d time.Duration, version uint8, w func(string, ...any)) time.Duration {
	if d < 0 {
		w("Advert interval (%v) not valid! Must be > 0 - ignoring", d)
		d = 0
	}
	if d == 0 {
		return DefaultAdvertInt
	}
	unit, limit := time.Second, time.Duration(maxIntervalV2)
	if version == 3 {
		unit, limit = 10*time.Millisecond, maxIntervalV3
	}
	switch {
	case d > limit*unit:
		w("VRRPv%d advertisement interval %.2fs is out of range. Must be less than %.2fs. Setting to %.2fs",
			version, d.Seconds(), ((limit + 1) * unit).Seconds(), (limit * unit).Seconds())
		return limit * unit
	case d%unit != 0:
		if version == 3 {
			w("VRRPv3 advertisement interval %fs must be in units of 10ms - rounding", d.Seconds())
		} else {
			w("VRRPv2 advertisement interval %fs must be an integer. rounding", d.Seconds())
		}
		d = (d + unit/2) / unit * unit
		if d == 0 {
			d = unit
		}
	}
	return d
}

func (g GARPConfig) normalize() GARPConfig {
	if g.MasterDelay == 0 {
		g.MasterDelay = DefaultGARPMasterDelay
	}
	if g.MasterRepeat == 0 {
		g.MasterRepeat = DefaultGARPMasterRepeat
	}
	if g.RefreshRepeat == 0 {
		g.RefreshRepeat = 1
	}
	if g.LowerPrioDelay == 0 {
		g.LowerPrioDelay = g.MasterDelay
	}
	if g.LowerPrioRepeat == 0 {
		g.LowerPrioRepeat = g.MasterRepeat
	}
	// Negative values stay: "none" (keepalived's 0), and Normalize stays
	// idempotent.
	return g
}

// Unicast reports whether the instance sends its adverts by unicast.
func (c Config) Unicast() bool { return len(c.UnicastPeers) > 0 }
