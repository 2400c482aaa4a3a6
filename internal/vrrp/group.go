package vrrp

import (
	"fmt"
	"time"
)

// Group is a vrrp_sync_group: instances that change state together
// (keepalived vrrp_sync.c, the sync parts of vrrp_scheduler.c and
// vrrp_track.c), typically the outside and inside VIPs of a NAT director,
// which are useless one without the other.
//
// Semantics (keepalived 2.x):
//
//   - FAULT: when a member faults (Instance.Fault) and no member was
//     faulted, every other member goes FAULT too (a master sends priority 0
//     and releases its VIPs); the group is FAULT until every member that
//     faulted itself has recovered, then all members go BACKUP together.
//   - MASTER: a member whose down timer runs out goes MASTER only if the
//     group is already MASTER or every other member wants MASTER too (its
//     own down timer ran out); otherwise it stays BACKUP wanting MASTER and
//     re-arms its down timer for a full Master_Down_Interval ("prefer
//     backup state to avoid thrashing"). When one goes, all the others go
//     MASTER at once. keepalived sets each member's wantstate just before
//     moving it, which with three or more members can leave one in BACKUP
//     until its next down timeout; here the group is marked MASTER first,
//     so all move together.
//   - BACKUP: a master that goes BACKUP (higher-priority advert) takes the
//     group's other masters to BACKUP (without a priority-0 advert).
//   - An advert accepted in BACKUP withdraws the member's wish to be MASTER.
//   - A master receiving a lower-priority advert also sends the
//     garp_lower_prio bursts of the other members.
//
// Members' trackers should be unweighted (keepalived ignores their weights
// unless sync_group_tracking_weight): the caller's business when it
// computes priorities. Start and stop members through the group; step them
// one by one with their own methods, which may return actions for the other
// members (Action.Instance says whose). After any step, re-read every
// member's NextDeadline (or the group's).
type Group struct {
	name    string
	members []*Instance
	state   State
	faults  int // members whose own Fault is in force (num_member_fault)
}

// NewGroup returns a sync group of the given instances, which must not be
// started nor belong to another group. keepalived refuses nothing here but
// warns that a group mixing address owners and other instances "won't
// work"; NewGroup refuses it.
func NewGroup(name string, members ...*Instance) (*Group, error) {
	g := &Group{name: name, members: members}
	owners := 0
	for _, in := range members {
		switch {
		case in.group != nil:
			return nil, fmt.Errorf("%w: instance %s cannot exist in more than one sync group", ErrConfig, in.Name())
		case in.state != Init:
			return nil, fmt.Errorf("%w: instance %s is already started", ErrConfig, in.Name())
		}
		if in.base == PriorityOwner {
			owners++
		}
	}
	if owners != 0 && owners != len(members) {
		return nil, fmt.Errorf("%w: sync group %s has some member(s) as address owner and some not as address owner", ErrConfig, name)
	}
	for _, in := range members {
		in.group = g
	}
	return g, nil
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// State returns the group's state (INIT before Start).
func (g *Group) State() State { return g.state }

// Members returns the group's instances.
func (g *Group) Members() []*Instance { return g.members }

// NextDeadline returns the earliest of the members' NextDeadline, or the
// zero Time.
func (g *Group) NextDeadline() time.Time {
	var d time.Time
	for _, in := range g.members {
		if t := in.NextDeadline(); !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// Tick ticks every member (see Instance.Tick).
func (g *Group) Tick(now time.Time) []Action {
	var out []Action
	for _, in := range g.members {
		in.tick(now, &out)
	}
	return out
}

// Start starts every member (keepalived vrrp_init_state with sync groups):
// all FAULT if one is faulted; all MASTER at once if all are address owners
// configured MASTER; otherwise each starts BACKUP as Instance.Start does.
// The group's notify follows its members'.
func (g *Group) Start(now time.Time) []Action {
	var out []Action
	if g.state != Init && g.state != Stop {
		return nil
	}
	g.faults = 0
	owners := 0
	for _, in := range g.members {
		if in.fault {
			g.faults++
		}
		if in.cfg.InitialState == Master && in.cfg.Priority == PriorityOwner {
			owners++
		}
	}
	switch {
	case g.faults > 0:
		g.state = Fault
	case owners == len(g.members):
		g.state = Master
	default:
		g.state = Backup
	}
	for _, in := range g.members {
		in.start(now, &out)
	}
	g.notify(&out)
	return out
}

// Shutdown stops every member and runs the group's notify for STOP.
func (g *Group) Shutdown(now time.Time) []Action {
	var out []Action
	if g.state == Init || g.state == Stop {
		return nil
	}
	for _, in := range g.members {
		in.shutdown(now, &out)
	}
	g.state = Stop
	g.notify(&out)
	return out
}

func (g *Group) notify(out *[]Action) {
	*out = append(*out, Action{Kind: RunNotify, Group: g.name, State: g.state})
}

// canGoMaster is keepalived's vrrp_sync_can_goto_master: "Only sync to
// master if everyone wants to, i.e. prefer backup state to avoid
// thrashing". Members not running (stopped one by one) do not hold the
// others back.
func (g *Group) canGoMaster(in *Instance, now time.Time) bool {
	if g.state == Master {
		return true
	}
	for _, o := range g.members {
		if o != in && o.running() && o.want != Master {
			in.downTimer = in.masterDownInterval()
			in.sands = now.Add(in.downTimer)
			return false
		}
	}
	return true
}

// syncMaster is keepalived's vrrp_sync_master, after in went MASTER.
func (g *Group) syncMaster(in *Instance, now time.Time, out *[]Action) {
	if g.state == Master {
		return
	}
	g.state = Master
	for _, o := range g.members {
		if o != in && o.state == Backup {
			o.becomeMaster(now, out)
		}
	}
	g.notify(out)
}

// syncBackup is keepalived's vrrp_sync_backup, after in went BACKUP from
// MASTER or FAULT.
func (g *Group) syncBackup(in *Instance, now time.Time, out *[]Action) {
	if g.state == Backup {
		return
	}
	for _, o := range g.members {
		if o == in {
			continue
		}
		o.want = Backup
		switch o.state {
		case Master:
			o.leaveMaster(now, Backup, out)
		case Fault:
			o.leaveFault(now, out)
		}
	}
	g.state = Backup
	g.notify(out)
}

// memberFault follows in entering FAULT on its own fault (keepalived
// down_instance: "if (vrrp->sync && vrrp->sync->num_member_fault++ == 0)
// vrrp_sync_fault(vrrp)").
func (g *Group) memberFault(in *Instance, now time.Time, out *[]Action) {
	g.faults++
	if g.faults > 1 || g.state == Fault {
		return
	}
	for _, o := range g.members {
		if o != in && o.running() {
			o.want = Fault
			o.enterFault(now, out)
		}
	}
	g.state = Fault
	g.notify(out)
}

// memberUp follows in's own fault clearing (keepalived try_up_instance):
// the group comes back, all members BACKUP, once no member is faulted.
func (g *Group) memberUp(in *Instance, now time.Time, out *[]Action) {
	g.faults--
	in.want = Backup
	if g.faults > 0 {
		return
	}
	in.leaveFault(now, out)
	g.syncBackup(in, now, out)
}

// lowerPrioGARP sends the garp_lower_prio bursts of the members other than
// in that are masters (keepalived vrrp_state_master_rx: "send GARP messages
// for any other member of the group that has garp_lower_prio_rep set").
func (g *Group) lowerPrioGARP(in *Instance, now time.Time, out *[]Action) {
	for _, o := range g.members {
		if o != in {
			o.lowerPrioGARP(now, out)
		}
	}
}
