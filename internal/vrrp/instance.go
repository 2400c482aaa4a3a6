package vrrp

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// ActionKind says what an Action asks the caller to do.
type ActionKind uint8

// The actions, in the order an Instance emits them for one transition
// (keepalived vrrp_state_goto_master: the advert first, "so the old master
// removes the VIPs before we send the gratuitous ARPs", then the addresses,
// the GARPs, the notify script).
const (
	// SendAdvert: send an advert built with Instance.Build(Priority).
	// Priority 0 is the master resigning (shutdown, FAULT).
	SendAdvert ActionKind = iota + 1
	// BecomeMaster: add the VIPs (and virtual routes and rules, the
	// no_accept firewall rule; the LVS sync daemon becomes master).
	BecomeMaster
	// BecomeBackup: the instance is BACKUP; if Release, remove the VIPs
	// BecomeMaster added (the LVS sync daemon becomes backup).
	BecomeBackup
	// BecomeFault: the instance is FAULT; if Release, remove the VIPs.
	BecomeFault
	// Stopped: the instance stopped (Shutdown); if Release, remove the VIPs.
	Stopped
	// SendGARP: send Count gratuitous ARPs (IPv4) / unsolicited neighbour
	// adverts (IPv6) for each VIP, spaced by the garp_interval rate limit.
	SendGARP
	// RunNotify: run the notify scripts for State (notify_master, ...,
	// notify with "INSTANCE name STATE priority"), or a sync group's when
	// Group is set ("GROUP name STATE").
	RunNotify
	// NotifyRxLowerPrio: run notify_master_rx_lower_pri (the master
	// received a lower-priority advert).
	NotifyRxLowerPrio
	// PriorityChanged: the effective priority is now Priority (keepalived
	// logs it and, with notify_priority_changes, writes it to the notify
	// FIFO).
	PriorityChanged
)

// Action is one thing the caller must do after a step. The Instance field
// names the instance (its Config.Name) since a step of a sync group member
// can act on the other members.
type Action struct {
	Kind     ActionKind
	Instance string // the instance's Config.Name; empty for a group's RunNotify
	Group    string // RunNotify of a sync group: the group's name
	Priority uint8  // SendAdvert, PriorityChanged
	Count    int    // SendGARP: packets per VIP
	State    State  // RunNotify: the state entered
	Release  bool   // BecomeBackup, BecomeFault, Stopped: remove the VIPs
}

// String returns the action as the transcript tests write it, for example
// "a: send prio=100", "a: become BACKUP release", "group g: notify MASTER".
func (a Action) String() string {
	var b strings.Builder
	if a.Group != "" {
		fmt.Fprintf(&b, "group %s: ", a.Group)
	} else {
		fmt.Fprintf(&b, "%s: ", a.Instance)
	}
	switch a.Kind {
	case SendAdvert:
		fmt.Fprintf(&b, "send prio=%d", a.Priority)
	case BecomeMaster:
		b.WriteString("become MASTER")
	case BecomeBackup:
		b.WriteString("become BACKUP")
	case BecomeFault:
		b.WriteString("become FAULT")
	case Stopped:
		b.WriteString("stop")
	case SendGARP:
		fmt.Fprintf(&b, "garp n=%d", a.Count)
	case RunNotify:
		fmt.Fprintf(&b, "notify %v", a.State)
	case NotifyRxLowerPrio:
		b.WriteString("notify master_rx_lower_pri")
	case PriorityChanged:
		fmt.Fprintf(&b, "priority %d", a.Priority)
	default:
		fmt.Fprintf(&b, "ActionKind(%d)", a.Kind)
	}
	if a.Release {
		b.WriteString(" release")
	}
	return b.String()
}

// Errors of Instance.Advert: why an advert was discarded (keepalived
// vrrp_check_packet and its statistics). Returned unwrapped.
var (
	// ErrInactive: the instance is not BACKUP or MASTER (keepalived ignores
	// adverts in FAULT and before it is initialised).
	ErrInactive = errors.New("vrrp: instance not running or in FAULT")
	// ErrVRID: the advert is for another virtual router.
	ErrVRID = errors.New("vrrp: virtual router ID mismatch")
	// ErrVersionMismatch: the advert's version is not the instance's.
	ErrVersionMismatch = errors.New("vrrp: version mismatch")
	// ErrAuthTypeMismatch: VRRPv2 Auth Type differs from the instance's.
	ErrAuthTypeMismatch = errors.New("vrrp: authentication type mismatch")
	// ErrAuthFailure: wrong VRRPv2 simple password.
	ErrAuthFailure = errors.New("vrrp: authentication failure")
	// ErrIntervalMismatch: a VRRPv2 advert interval differs from the local
	// one (RFC 3768 §7.1; keepalived: "to prevent concurrent VRID running").
	ErrIntervalMismatch = errors.New("vrrp: advertisement interval mismatch")
	// ErrAddrCount: the advert lists another number of addresses.
	ErrAddrCount = errors.New("vrrp: address count mismatch")
	// ErrAddrList: a VIP of the instance is missing from the advert.
	ErrAddrList = errors.New("vrrp: address list mismatch")
	// ErrNotPeer: with CheckUnicastSrc, the sender is no unicast peer.
	ErrNotPeer = errors.New("vrrp: source is not a unicast peer")
)

// Instance is one vrrp_instance's state machine: a value with no I/O and no
// clock, stepped by the caller's inputs (Start, Advert, Tick, Fault,
// PriorityChange, Shutdown), each returning the Actions to perform in
// order. After every step the caller re-reads NextDeadline and calls Tick
// once it has passed. An Instance is not safe for concurrent use; the
// members of a Group must be stepped by one goroutine.
//
// States (RFC 5798 §6.4 with keepalived's FAULT and STOP):
//
//	INIT --Start--> BACKUP --down timer expires--> MASTER
//	  |              |  ^   <--higher-prio advert--  |
//	  |   Fault(true)|  |Fault(false)                |
//	  | Start        v  |                            | Fault(true): priority-0
//	  +-(faulted)--> FAULT <-------------------------+ advert, VIPs released
//
//	INIT --Start--> MASTER at once for an address owner configured MASTER;
//	any --Shutdown--> STOP (a master sends priority 0); STOP --Start--> as INIT.
//
// Timers: in BACKUP the master down timer, Master_Down_Interval =
// DownTimerAdverts × Master_Adver_Interval + Skew_Time, re-armed by every
// accepted advert, Skew_Time alone after a priority-0 advert; in MASTER the
// advert timer (AdvertInt) and the second gratuitous ARP burst.
type Instance struct {
	cfg   Config
	group *Group

	state State
	// want is keepalived's wantstate: the state the instance would be in
	// regardless of its sync group (Master while a group holds it back).
	want  State
	fault bool // the caller's Fault(true) is in force

	base, eff uint8 // base priority (255 can drop to 254) and effective priority

	masterAdverInt time.Duration // VRRPv3 learns it from the master's adverts
	downTimer      time.Duration // keepalived's ms_down_timer: what sands was last armed with in BACKUP
	sands          time.Time     // the protocol timer: advert (MASTER) or master down (BACKUP); zero when off
	preemptAt      time.Time     // preempt_delay: lower-priority adverts are accepted until then; zero: not started
	masterAddr     netip.Addr    // source of the last advert seen in BACKUP (skip_check_adv_addr)

	vipSet      bool      // BecomeMaster was emitted and no release since
	garpAt      time.Time // second burst after becoming master
	garpLowerAt time.Time // second burst after a lower-priority advert
	refreshAt   time.Time // garp_master_refresh, checked when an advert is sent

	local    netip.Addr // LocalAddr without zone, for the equal-priority comparison
	vipBytes []byte     // the VIPs as an advert lists them
	authData [AuthDataLen]byte
}

// NewInstance returns an instance in state INIT for cfg, normalised as
// Config.Normalize does.
func NewInstance(cfg Config) (*Instance, error) {
	cfg, _, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	in := &Instance{cfg: cfg, base: cfg.Priority, eff: cfg.Priority, masterAdverInt: cfg.AdvertInt}
	in.local = cfg.LocalAddr.WithZone("")
	a := Advert{Family: FamilyOf(cfg.LocalAddr)}
	if err := a.SetAddrs(cfg.VIPs); err != nil {
		return nil, fmt.Errorf("%w: (%s) VIPs: %w", ErrConfig, cfg.Name, err)
	}
	in.vipBytes = a.addrs
	if cfg.Auth == AuthPass {
		copy(in.authData[:], cfg.AuthPass)
	}
	in.downTimer = in.masterDownInterval()
	return in, nil
}

// Config returns the instance's normalised configuration.
func (in *Instance) Config() Config { return in.cfg }

// Name returns Config().Name.
func (in *Instance) Name() string { return in.cfg.Name }

// Group returns the sync group the instance belongs to, or nil.
func (in *Instance) Group() *Group { return in.group }

// State returns the current state.
func (in *Instance) State() State { return in.state }

// Priority returns the effective priority (what adverts carry).
func (in *Instance) Priority() uint8 { return in.eff }

// Codec returns the codec options the instance's adverts use.
func (in *Instance) Codec() Codec { return Codec{V3ChecksumAsV2: in.cfg.V3ChecksumAsV2} }

// MasterAdverInterval returns Master_Adver_Interval: the configured
// interval, or for VRRPv3 in BACKUP the one the master advertises.
func (in *Instance) MasterAdverInterval() time.Duration { return in.masterAdverInt }

// SkewTime returns Skew_Time for the effective priority: ((256 -
// Priority) × Master_Adver_Interval) / 256 for VRRPv3 (RFC 5798 §6.1),
// (256 - Priority) / 256 s for VRRPv2 (RFC 3768 §6.1), truncated to
// microseconds as keepalived's VRRP_TIMER_SKEW.
func (in *Instance) SkewTime() time.Duration { return in.skew(in.eff) }

// MasterDownInterval returns Master_Down_Interval = DownTimerAdverts ×
// Master_Adver_Interval + Skew_Time (RFC 5798 §6.1 with 3; keepalived
// VRRP_MS_DOWN_TIMER).
func (in *Instance) MasterDownInterval() time.Duration { return in.masterDownInterval() }

// NextDeadline returns when Tick must next be called (possibly the time of
// the step just made: then at once), or the zero Time if no timer runs
// (INIT, FAULT, STOP).
func (in *Instance) NextDeadline() time.Time {
	d := in.sands
	for _, t := range [...]time.Time{in.garpAt, in.garpLowerAt} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// SetLocalAddr changes the instance's primary address (the interface's
// address changed). It must stay of the same family.
func (in *Instance) SetLocalAddr(addr netip.Addr) error {
	if FamilyOf(addr) != FamilyOf(in.cfg.LocalAddr) {
		return ErrFamily
	}
	in.cfg.LocalAddr, in.local = addr, addr.WithZone("")
	return nil
}

// Build returns the advert the instance sends with priority prio (an
// action's SendAdvert.Priority): its version, VRID, configured interval
// (VRRPv3 advertises its own, not a learned one), authentication and VIPs.
// The advert's addresses alias the instance's; Build does not allocate.
func (in *Instance) Build(prio uint8) Advert {
	a := Advert{
		Version:  in.cfg.Version,
		VRID:     in.cfg.VRID,
		Priority: prio,
		Family:   FamilyOf(in.cfg.LocalAddr),
		addrs:    in.vipBytes,
	}
	if a.Version == 2 {
		a.Interval = uint16(in.cfg.AdvertInt / time.Second)
		a.AuthType = in.cfg.Auth
		if a.Family == IPv4 {
			a.AuthData = in.authData
		}
	} else {
		a.Interval = uint16(in.cfg.AdvertInt / (10 * time.Millisecond))
	}
	return a
}

// skew is VRRP_TIMER_SKEW_CALC with pri_val = 256 - prio, in microseconds
// as keepalived computes it: VRRPv3 ((pri_val × centiseconds × 625) / 16
// µs, 625/16 being 10000 µs / 256), VRRPv2 (pri_val × 1 s / 256).
func (in *Instance) skew(prio uint8) time.Duration {
	priVal := 256 - int64(prio)
	if in.cfg.Version == 3 {
		cs := int64(in.masterAdverInt / (10 * time.Millisecond))
		return time.Duration(priVal*cs*625/16) * time.Microsecond
	}
	return time.Duration(priVal*1000000/256) * time.Microsecond
}

func (in *Instance) masterDownInterval() time.Duration {
	return time.Duration(in.cfg.DownTimerAdverts)*in.masterAdverInt + in.skew(in.eff)
}

func (in *Instance) running() bool { return in.state == Backup || in.state == Master }

func (in *Instance) emit(out *[]Action, a Action) {
	a.Instance = in.cfg.Name
	*out = append(*out, a)
}

// Start starts the instance (keepalived vrrp_init_state): FAULT if Fault is
// in force; MASTER at once for the address owner configured MASTER; else
// BACKUP with the master down timer (a non-owner configured MASTER too).
// Start on a running instance does nothing; from STOP it starts again.
// Members of a Group are started with Group.Start.
func (in *Instance) Start(now time.Time) []Action {
	var out []Action
	in.start(now, &out)
	return out
}

func (in *Instance) start(now time.Time, out *[]Action) {
	if in.state != Init && in.state != Stop {
		return
	}
	in.reset()
	if in.base == PriorityOwner {
		in.eff = PriorityOwner
	}
	if in.cfg.PreemptDelay > 0 {
		in.preemptAt = now.Add(in.cfg.PreemptDelay)
	}
	in.want = in.cfg.InitialState
	if in.fault || in.group != nil && in.group.faults > 0 {
		in.want = Fault
		in.enterFault(now, out)
		return
	}
	if in.want == Master && in.base == PriorityOwner {
		// keepalived sets the down timer to 1 µs: "The simplest way to
		// become master is to timeout from the backup state very quickly".
		in.becomeMaster(now, out)
		return
	}
	// Any other instance, a non-owner configured MASTER too, starts BACKUP
	// with the full Master_Down_Interval. keepalived's vrrp_init_state has
	// a shorter timer (one interval plus the smallest skew) for a sync
	// group member in BACKUP that wants MASTER, but keepalived 2.2.7,
	// measured (testdata/keepalived-2.2.7.capture), takes the full interval for
	// non-owners configured MASTER, alone and in sync groups.
	in.state = Backup
	in.downTimer = in.masterDownInterval()
	in.sands = now.Add(in.downTimer)
	in.emit(out, Action{Kind: BecomeBackup})
	in.emit(out, Action{Kind: RunNotify, State: Backup})
}

// reset clears the per-run protocol state of a (re)start.
func (in *Instance) reset() {
	in.base = in.cfg.Priority
	in.masterAdverInt = in.cfg.AdvertInt
	in.downTimer = in.masterDownInterval()
	in.sands, in.preemptAt, in.garpAt, in.garpLowerAt, in.refreshAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	in.masterAddr = netip.Addr{}
	in.vipSet = false
}

// Tick runs the timers due at now: in BACKUP the master down timer (the
// instance takes over, unless its sync group holds it back), in MASTER the
// advert timer (an advert, and the periodic GARP refresh when due) and the
// delayed GARP bursts. Calling it early does nothing.
func (in *Instance) Tick(now time.Time) []Action {
	var out []Action
	in.tick(now, &out)
	return out
}

func due(t, now time.Time) bool { return !t.IsZero() && !now.Before(t) }

func (in *Instance) tick(now time.Time, out *[]Action) {
	if due(in.sands, now) {
		switch in.state {
		case Backup:
			// keepalived vrrp_goto_master ("Receive advertisement timeout").
			in.gotoMaster(now, out)
		case Master:
			in.masterTx(now, out)
		}
	}
	if in.state != Master {
		in.garpAt, in.garpLowerAt = time.Time{}, time.Time{}
		return
	}
	// keepalived vrrp_gratuitous_arp_thread and
	// vrrp_lower_prio_gratuitous_arp_thread, one-shot timers.
	if due(in.garpAt, now) {
		in.garpAt = time.Time{}
		if in.cfg.GARP.MasterRepeat > 0 {
			in.emit(out, Action{Kind: SendGARP, Count: in.cfg.GARP.MasterRepeat})
		}
	}
	if due(in.garpLowerAt, now) {
		in.garpLowerAt = time.Time{}
		if in.cfg.GARP.LowerPrioRepeat > 0 {
			in.emit(out, Action{Kind: SendGARP, Count: in.cfg.GARP.LowerPrioRepeat})
		}
	}
}

// masterTx is keepalived's vrrp_state_master_tx for a master: an advert,
// and the GARP refresh if due. keepalived tests the refresh time with a
// strict "now > refresh time" on a clock that always runs a little late;
// here the timer fires on time, so due means now >= refresh time.
func (in *Instance) masterTx(now time.Time, out *[]Action) {
	in.emit(out, Action{Kind: SendAdvert, Priority: in.eff})
	in.sands = now.Add(in.cfg.AdvertInt)
	if in.cfg.GARP.Refresh > 0 && due(in.refreshAt, now) {
		if in.cfg.GARP.RefreshRepeat > 0 {
			in.emit(out, Action{Kind: SendGARP, Count: in.cfg.GARP.RefreshRepeat})
		}
		in.refreshAt = now.Add(in.cfg.GARP.Refresh)
	}
}

// gotoMaster is keepalived's vrrp_goto_master / vrrp_state_goto_master.
func (in *Instance) gotoMaster(now time.Time, out *[]Action) {
	in.want = Master
	if in.group != nil && !in.group.canGoMaster(in, now) {
		return
	}
	in.becomeMaster(now, out)
	if in.group != nil {
		in.group.syncMaster(in, now, out)
	}
}

// becomeMaster enters MASTER: vrrp_state_goto_master, master_tx and
// vrrp_state_become_master.
func (in *Instance) becomeMaster(now time.Time, out *[]Action) {
	in.state, in.want = Master, Master
	in.masterAdverInt = in.cfg.AdvertInt // "changing advert interval ... to locally configured"
	in.sands = now.Add(in.cfg.AdvertInt)
	in.emit(out, Action{Kind: SendAdvert, Priority: in.eff})
	in.emit(out, Action{Kind: BecomeMaster})
	in.vipSet = true
	if g := in.cfg.GARP; g.MasterRepeat > 0 {
		in.emit(out, Action{Kind: SendGARP, Count: g.MasterRepeat})
	}
	if g := in.cfg.GARP; g.Refresh > 0 {
		in.refreshAt = now.Add(g.Refresh)
	}
	in.emit(out, Action{Kind: RunNotify, State: Master})
	in.garpLowerAt = time.Time{}
	if g := in.cfg.GARP; g.MasterDelay > 0 {
		in.garpAt = now.Add(g.MasterDelay)
	}
}

// leaveMaster is keepalived's vrrp_state_leave_master to BACKUP or FAULT.
func (in *Instance) leaveMaster(now time.Time, to State, out *[]Action) {
	if to == Fault {
		in.emit(out, Action{Kind: SendAdvert, Priority: PriorityStop})
	}
	release := in.vipSet
	in.vipSet = false
	in.garpAt, in.garpLowerAt, in.refreshAt = time.Time{}, time.Time{}, time.Time{}
	in.state = to
	if to == Backup {
		in.preemptAt = time.Time{}
		in.emit(out, Action{Kind: BecomeBackup, Release: release})
		in.emit(out, Action{Kind: RunNotify, State: Backup})
		in.downTimer = in.masterDownInterval()
		in.sands = now.Add(in.downTimer)
		return
	}
	in.emit(out, Action{Kind: BecomeFault, Release: release})
	in.emit(out, Action{Kind: RunNotify, State: Fault})
	in.sands = time.Time{}
}

// enterFault puts a BACKUP (or just started) instance in FAULT, or a
// MASTER through leaveMaster.
func (in *Instance) enterFault(now time.Time, out *[]Action) {
	if in.state == Master {
		in.leaveMaster(now, Fault, out)
		return
	}
	if in.state == Fault {
		return
	}
	in.state = Fault
	in.sands = time.Time{}
	in.emit(out, Action{Kind: BecomeFault})
	in.emit(out, Action{Kind: RunNotify, State: Fault})
}

// leaveFault is keepalived's vrrp_state_leave_fault to BACKUP.
func (in *Instance) leaveFault(now time.Time, out *[]Action) {
	in.state, in.want = Backup, Backup
	in.preemptAt = time.Time{}
	in.masterAdverInt = in.cfg.AdvertInt
	in.downTimer = in.masterDownInterval()
	in.sands = now.Add(in.downTimer)
	in.emit(out, Action{Kind: BecomeBackup})
	in.emit(out, Action{Kind: RunNotify, State: Backup})
}

// Fault sets or clears the instance's fault: an interface it depends on
// (its own, unless dont_track_primary, or an unweighted track_interface)
// is down, an unweighted tracker failed (EffectivePriority's fault), its
// source address is missing. keepalived down_instance: a MASTER sends a
// priority-0 advert and releases its VIPs, a BACKUP stops its timer;
// try_up_instance: back to BACKUP with a fresh master down timer, unless
// another member of its sync group is still faulted. Before Start the
// fault is only recorded.
func (in *Instance) Fault(now time.Time, down bool) []Action {
	if down == in.fault {
		return nil
	}
	in.fault = down
	if in.state == Init || in.state == Stop {
		return nil
	}
	var out []Action
	if down {
		in.want = Fault
		in.enterFault(now, &out)
		if in.group != nil {
			in.group.memberFault(in, now, &out)
		}
		return out
	}
	if in.group != nil {
		in.group.memberUp(in, now, &out)
		return out
	}
	in.leaveFault(now, &out)
	return out
}

// PriorityChange sets the effective priority (from EffectivePriority),
// clamped to 1..254; the address owner's never changes (keepalived
// vrrp_set_effective_priority). A BACKUP whose priority rises has its
// running down timer shortened by the skew it gained. The new priority is
// advertised from the next advert on; nothing else happens at once (a
// master whose priority fell below a backup's is preempted when that
// backup's down timer runs out).
func (in *Instance) PriorityChange(now time.Time, prio uint8) []Action {
	if in.base == PriorityOwner {
		return nil
	}
	prio = min(max(prio, 1), PriorityOwner-1)
	if prio == in.eff {
		return nil
	}
	old := in.downTimer
	rising := prio > in.eff
	in.eff = prio
	if !in.running() && in.state != Fault {
		return nil
	}
	in.downTimer = in.masterDownInterval()
	if in.state == Backup && rising && old > in.downTimer && !in.sands.IsZero() {
		// vrrp_thread_requeue_read_relative(vrrp, old_down_timer -
		// ms_down_timer); if that is already past, the timer is due now.
		in.sands = in.sands.Add(in.downTimer - old)
		if in.sands.Before(now) {
			in.sands = now
		}
	}
	return []Action{{Kind: PriorityChanged, Instance: in.cfg.Name, Priority: prio}}
}

// Shutdown stops the instance (keepalived's shutdown: vrrp_restore_interface
// with a priority-0 advert from a master, then notify_stop).
func (in *Instance) Shutdown(now time.Time) []Action {
	var out []Action
	in.shutdown(now, &out)
	return out
}

func (in *Instance) shutdown(_ time.Time, out *[]Action) {
	if in.state == Init || in.state == Stop {
		return
	}
	if in.state == Master {
		in.emit(out, Action{Kind: SendAdvert, Priority: PriorityStop})
	}
	release := in.vipSet
	in.reset()
	in.state = Stop
	in.emit(out, Action{Kind: Stopped, Release: release})
	in.emit(out, Action{Kind: RunNotify, State: Stop})
}

// Advert processes an advert the caller received from from and decoded.
// It returns the error saying why the advert was discarded (the checks of
// keepalived's vrrp_check_packet against the configuration, in its order),
// or the actions it causes (RFC 5798 §6.4.2, §6.4.3 with keepalived's
// extensions):
//
// In BACKUP: priority 0 sets the down timer to Skew_Time; an advert of
// higher or equal priority, or any with NoPreempt, or a lower one while the
// preempt delay runs, re-arms the down timer (VRRPv3 adopts the master's
// interval); a lower one is ignored, so the down timer runs out and the
// instance preempts.
//
// In MASTER: priority 0 is answered with an advert at once; a higher
// priority, or an equal one from a higher address, sends the instance to
// BACKUP (after one more advert with HigherPrioSendAdvert); a lower one is
// answered with an advert (unless LowerPrioNoAdvert), gratuitous ARPs
// (garp_lower_prio_repeat, again after garp_lower_prio_delay, for the
// group's other members too) and notify_master_rx_lower_pri. Two address
// owners: the instance lowers its own priority to 254 and goes BACKUP
// (keepalived's "CONFIGURATION ERROR ... reducing local priority").
func (in *Instance) Advert(now time.Time, from netip.Addr, a Advert) ([]Action, error) {
	if !in.running() {
		return nil, ErrInactive
	}
	from = from.WithZone("")
	if err := in.check(from, &a); err != nil {
		return nil, err
	}
	var out []Action
	if in.state == Backup {
		in.backupRx(now, from, &a)
		return nil, nil
	}
	in.masterRx(now, from, &a, &out)
	return out, nil
}

// check is keepalived's vrrp_check_packet after the packet-level checks.
func (in *Instance) check(from netip.Addr, a *Advert) error {
	c := &in.cfg
	switch {
	case a.VRID != c.VRID:
		return ErrVRID
	case FamilyOf(from) != FamilyOf(c.LocalAddr) || a.Family != FamilyOf(c.LocalAddr):
		return ErrFamily
	case a.Version != c.Version:
		return ErrVersionMismatch
	}
	if c.Version == 2 {
		if a.AuthType != c.Auth {
			return ErrAuthTypeMismatch
		}
		if c.Auth == AuthPass && a.Family == IPv4 && subtle.ConstantTimeCompare(a.AuthData[:], in.authData[:]) != 1 {
			return ErrAuthFailure
		}
		if a.Duration() != c.AdvertInt {
			return ErrIntervalMismatch
		}
	}
	// skip_check_adv_addr: a backup skips the address checks for adverts
	// from the master it already follows.
	if in.state == Backup && c.SkipCheckAdvAddr && from == in.masterAddr {
		return nil
	}
	if a.NumAddrs() != len(c.VIPs) {
		return ErrAddrCount
	}
	for _, v := range c.VIPs {
		if !a.HasAddr(v) {
			return ErrAddrList
		}
	}
	if c.CheckUnicastSrc && c.Unicast() {
		for _, p := range c.UnicastPeers {
			if p.WithZone("") == from {
				return nil
			}
		}
		return ErrNotPeer
	}
	return nil
}

// backupRx is keepalived's vrrp_state_backup after the checks.
func (in *Instance) backupRx(now time.Time, from netip.Addr, a *Advert) {
	if a.Priority == PriorityStop {
		in.downTimer = in.skew(in.eff)
		in.sands = now.Add(in.downTimer)
		return
	}
	delay := in.cfg.PreemptDelay
	in.masterAddr = from
	if !(in.cfg.NoPreempt || a.Priority >= in.eff ||
		delay > 0 && (in.preemptAt.IsZero() || in.preemptAt.After(now))) {
		// "received lower priority advert - discarding": the down timer
		// keeps running.
		return
	}
	if in.cfg.Version == 3 {
		in.masterAdverInt = a.Duration()
	}
	in.downTimer = in.masterDownInterval()
	if delay > 0 {
		if a.Priority >= in.eff {
			in.preemptAt = time.Time{} // "stop preempt delay"
		} else if in.preemptAt.IsZero() {
			in.preemptAt = now.Add(delay) // "start preempt delay"
		}
	}
	// "We might have been held in backup by a sync group ... Now we have
	// received a backup, we want to be in BACKUP state."
	in.want = Backup
	in.sands = now.Add(in.downTimer)
}

// masterRx is keepalived's vrrp_state_master_rx after the checks.
func (in *Instance) masterRx(now time.Time, from netip.Addr, a *Advert, out *[]Action) {
	cmp := from.Compare(in.local) // > 0: the sender's address is higher
	higher := a.Priority > in.eff || a.Priority == in.eff && cmp > 0
	if a.Priority == PriorityStop || in.cfg.HigherPrioSendAdvert && higher {
		in.advertNow(now, out)
		if a.Priority == PriorityStop {
			return
		}
	}
	if a.Priority == in.eff && cmp != 0 && in.eff == PriorityOwner {
		// Two address owners: keepalived lowers its own base and
		// effective priority to 254 for good.
		in.base, in.eff = PriorityOwner-1, PriorityOwner-1
		in.emit(out, Action{Kind: PriorityChanged, Priority: in.eff})
		higher = true
	}
	switch {
	case a.Priority < in.eff || a.Priority == in.eff && cmp < 0:
		if !in.cfg.LowerPrioNoAdvert {
			in.advertNow(now, out)
		}
		in.lowerPrioGARP(now, out)
		if in.group != nil {
			in.group.lowerPrioGARP(in, now, out)
		}
		in.emit(out, Action{Kind: NotifyRxLowerPrio})
	case higher:
		if in.cfg.Version == 3 {
			in.masterAdverInt = a.Duration()
		}
		in.want = Backup
		in.leaveMaster(now, Backup, out)
		if in.group != nil {
			in.group.syncBackup(in, now, out)
		}
	}
	// Equal priority from our own address: keepalived logs "WARNING -
	// equal priority advert received from remote host with our IP
	// address" and does nothing.
}

// advertNow sends an advert out of turn and restarts the advert timer.
func (in *Instance) advertNow(now time.Time, out *[]Action) {
	in.emit(out, Action{Kind: SendAdvert, Priority: in.eff})
	in.sands = now.Add(in.cfg.AdvertInt)
}

// lowerPrioGARP sends the garp_lower_prio_repeat burst and arms the delayed
// one (a master's reaction to a lower-priority master: refresh the
// switches' and hosts' caches the other master may have taken over).
func (in *Instance) lowerPrioGARP(now time.Time, out *[]Action) {
	g := in.cfg.GARP
	if g.LowerPrioRepeat <= 0 || !in.vipSet {
		return
	}
	in.emit(out, Action{Kind: SendGARP, Count: g.LowerPrioRepeat})
	if g.LowerPrioDelay > 0 {
		in.garpLowerAt = now.Add(g.LowerPrioDelay)
	}
}
