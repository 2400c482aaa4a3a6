package vrrp

// Tracker is the current state of one tracked object of an instance:
// track_script, track_interface, track_process, track_bfd entries (of the
// instance or of its sync group), as keepalived's vrrp_track.c weighs them.
type Tracker struct {
	// Weight is the configured weight, -254..254 (keepalived accepts
	// -253..253 for scripts, interfaces and BFD, ±254 for files and
	// processes). 0 means unweighted: a failure puts the instance in FAULT.
	Weight int
	// Reverse is the weight's "reverse": a positive weight is subtracted
	// while the object is up instead of added, a negative one added while
	// it is down; an unweighted reversed object faults while up.
	Reverse bool
	// Up is the object's state: the script succeeds (after rise/fall), the
	// interface is up, the process runs, the BFD session is up.
	Up bool
}

// EffectivePriority returns an instance's effective priority given its
// base priority and its trackers, and whether a tracker puts it in FAULT
// (the caller passes that to Instance.Fault and the priority to
// Instance.PriorityChange).
//
// As in keepalived (initialise_tracking_priorities, process_script_update_
// priority, vrrp_set_effective_priority): a positive weight is added while
// its object is up, a negative one while it is down (so subtracted), each
// multiplied by -1 if reversed; the sum is clamped to 1..254. The address
// owner's priority (255) never changes, and keepalived clears the weights
// of an owner's trackers at configuration time ("Cannot have weighted
// track script ... with priority 255"), so for base 255 every tracker
// counts as unweighted: a failure is a FAULT.
//
// track_file (a value times a weight) maps onto this as a Tracker of weight
// value×weight, clamped to -254..253, Up; an unweighted file faults on a
// non-zero value.
func EffectivePriority(base uint8, trackers []Tracker) (prio uint8, fault bool) {
	total := int(base)
	for _, t := range trackers {
		w := t.Weight
		if base == PriorityOwner {
			w = 0
		}
		if w == 0 {
			if t.Up == t.Reverse {
				fault = true
			}
			continue
		}
		if t.Up && w > 0 || !t.Up && w < 0 {
			if t.Reverse {
				w = -w
			}
			total += w
		}
	}
	if base == PriorityOwner {
		return PriorityOwner, fault
	}
	return uint8(min(max(total, 1), PriorityOwner-1)), fault
}
