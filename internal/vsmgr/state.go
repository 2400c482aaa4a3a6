package vsmgr

import (
	"fmt"
	"net/netip"
	"time"

	"golvs/internal/service"
)

// checkerState is keepalived's checker_t as far as ipwrapper.c reads it.
type checkerState struct {
	id    string
	alpha bool
	// up is is_up: a checker starts up, an alpha one down.
	up bool
	// hasRun: the checker has reported at least once.
	hasRun bool
	// weight, hasWeight, absolute are the last weight the checker
	// reported (see Report); keepalived's cur_weight is contribution().
	weight    int64
	hasWeight bool
	absolute  bool
}

// contribution is keepalived's cur_weight: what the checker adds to the
// configured weight base.
func (c *checkerState) contribution(base int64) int64 {
	switch {
	case !c.hasWeight:
		return 0
	case c.absolute:
		return c.weight - base
	}
	return c.weight
}

// rsState is keepalived's real_server_t: one real server, or the sorry
// server (which has no checkers and whose alive means "in service").
//
// A real server's life (update_svr_checker_state, perform_svr_state):
//
//	           first check ok (alpha)        any checker down
//	(alpha) down ──────────────────────► up ──────────────────► down
//	                                      ▲   last failed checker  │
//	(no alpha) ──────────────────────────┘◄─────── up again ───────┘
//
// While up it counts towards the quorum with its effective weight. Whether
// it is in IPVS also depends on the quorum and the sorry server
// (desiredDests).
type rsState struct {
	cfg      RealServer
	checkers []checkerState
	// failed is num_failed_checkers: the checkers that are down.
	failed int
	// alive is ISALIVE(rs).
	alive      bool
	lastChange time.Time
}

func (r *rsState) key() destKey { return destKey{r.cfg.Addr, r.cfg.Port} }

// effective is keepalived's effective_weight: the configured weight plus
// the checkers' contributions, unclamped (realWeight clamps it).
func (r *rsState) effective() int64 {
	base := int64(r.cfg.Dest.Weight)
	e := base
	for i := range r.checkers {
		e += r.checkers[i].contribution(base)
	}
	return e
}

// newRS returns the state of a real server that is new to the manager:
// its checkers start up, alpha ones down (validate_check_config at
// startup, check_new_rs_state at a reload), and it is not alive until
// initRS says so.
func newRS(cfg RealServer, now time.Time) *rsState {
	r := &rsState{cfg: cfg, lastChange: now}
	r.checkers = make([]checkerState, len(cfg.Checkers))
	for i, c := range cfg.Checkers {
		r.checkers[i] = checkerState{id: c.ID, alpha: c.Alpha, up: !c.Alpha}
		if c.Alpha {
			r.failed++
		}
	}
	return r
}

// migrate carries a surviving real server's checker states into its new
// configuration (migrate_checkers): checkers with the same ID keep their
// state and weight contribution, new ones start up, and new alpha checkers
// start down if the server has a failed checker or is down with no
// checker run.
//
// One departure from 2.2.7, found by the property test: keepalived
// carries is_up only from checkers that have run, so a reload resets an
// alpha checker still waiting for its first result to up, and can bring
// up a server no check has passed. Here a kept checker keeps its state,
// as the spec's alpha ("down until the first successful check") asks.
func (r *rsState) migrate(cfg RealServer) {
	old := make(map[string]*checkerState, len(r.checkers))
	for i := range r.checkers {
		old[r.checkers[i].id] = &r.checkers[i]
	}
	cks := make([]checkerState, len(cfg.Checkers))
	failed, anyRun := 0, false
	for i, c := range cfg.Checkers {
		n := checkerState{id: c.ID, alpha: c.Alpha, up: true}
		if o := old[c.ID]; o != nil {
			n.up, n.hasRun = o.up, o.hasRun
			n.weight, n.hasWeight, n.absolute = o.weight, o.hasWeight, o.absolute
		}
		anyRun = anyRun || n.hasRun
		if !n.up {
			failed++
		}
		cks[i] = n
	}
	if failed > 0 || (!r.alive && !anyRun) {
		for i := range cks {
			if !cks[i].hasRun && cks[i].alpha && cks[i].up {
				cks[i].up = false
				failed++
			}
		}
	}
	r.cfg, r.checkers, r.failed = cfg, cks, failed
}

// destKey identifies a real server within its virtual server.
type destKey struct {
	addr netip.Addr
	port uint16
}

func (k destKey) String() string { return netip.AddrPortFrom(k.addr, k.port).String() }

// vsState is keepalived's virtual_server_t with what the manager put in
// IPVS for it.
type vsState struct {
	cfg      VirtualServer
	quorumUp bool
	reals    []*rsState // configuration order
	sorry    *rsState   // nil without a sorry server

	// keys are the services the manager owns for this virtual server
	// (created or adopted); a key whose creation failed is not here.
	keys []service.Key
	// prog is what the manager has put in each service of keys, by real
	// server, and progOrder its order (keepalived's rs->set).
	prog      map[destKey]service.DestConfig
	progOrder []destKey
}

func (vs *vsState) owns(k service.Key) bool {
	for _, o := range vs.keys {
		if sameKey(o, k) {
			return true
		}
	}
	return false
}

func (vs *vsState) findRS(addr netip.Addr, port uint16) *rsState {
	for _, r := range vs.reals {
		if r.cfg.Addr == addr && r.cfg.Port == port {
			return r
		}
	}
	return nil
}

// weightSum is weigh_live_realservers: the IPVS weights of the alive
// real servers.
func (vs *vsState) weightSum() int64 {
	var s int64
	for _, r := range vs.reals {
		if r.alive {
			s += int64(realWeight(r.effective()))
		}
	}
	return s
}

func (vs *vsState) sorryActive() bool { return vs.sorry != nil && vs.sorry.alive }

func (vs *vsState) rsID(r *rsState) RSID {
	return RSID{VS: vs.cfg.Name, Addr: r.cfg.Addr, Port: r.cfg.Port}
}

// checkerResult is update_svr_checker_state: checker ci of r reports up.
func (ev *event) checkerResult(vs *vsState, r *rsState, ci int, up bool) {
	c := &r.checkers[ci]
	if c.up == up {
		if !c.hasRun {
			// The first result confirms the initial state. keepalived
			// notifies then for an alpha checker (a server that
			// starts down gets its notify_down once its first check
			// fails) and for a checker down without having run.
			if c.alpha || !up {
				ev.notifyRS(vs, r)
			}
			c.hasRun = true
		}
		return
	}
	c.hasRun = true
	reason := fmt.Sprintf("checker %d %s", ci, upDown(up))
	if up {
		// Up only when this was the last failed checker.
		if r.failed <= 1 {
			ev.performSvrState(vs, r, true, reason)
		}
	} else if r.failed == 0 {
		ev.performSvrState(vs, r, false, reason)
	}
	if !up {
		r.failed++
	} else if r.failed > 0 {
		r.failed--
	}
	c.up = up
}

// performSvrState is perform_svr_state: the server goes up or down, its
// notify script runs, and the quorum is re-evaluated (which is where a
// server that completes the quorum brings the others back). keepalived
// leaves the state as it was when its IPVS command fails (the next check
// tries again); here the state changes, the failure is logged, and IPVS
// follows at the next change (every event reconciles the whole virtual
// server).
func (ev *event) performSvrState(vs *vsState, r *rsState, alive bool, reason string) {
	if r.alive == alive {
		return
	}
	r.alive = alive
	r.lastChange = ev.now
	ev.log.Info("real server "+upDown(alive), "vs", vs.cfg.Name, "rs", r.key().String(),
		"from", upDown(!alive), "to", upDown(alive), "reason", reason)
	ev.notifyRS(vs, r)
	ev.updateQuorumState(vs, false)
}

// updateQuorumState is update_quorum_state. The quorum is gained when the
// alive weight reaches Quorum+Hysteresis (the sorry server leaves, the
// alive servers come back) and lost when it falls below
// Quorum-Hysteresis or to 0 (the alive servers leave, the sorry server
// comes in). init is set at startup and after a reload: a virtual server
// whose quorum is down and whose sorry server is not in yet gets it then
// ("Starting with quorum down"). Each change runs quorum_up or
// quorum_down; so does a gain at startup, but not a quorum down at
// startup without a sorry server (keepalived's behaviour).
func (ev *event) updateQuorumState(vs *vsState, init bool) {
	sum := vs.weightSum()
	q, h := int64(vs.cfg.Quorum), int64(vs.cfg.Hysteresis)
	threshold := q + h
	if vs.quorumUp {
		threshold = q - h
	}
	reason := fmt.Sprintf("alive weight %d, quorum %d, hysteresis %d", sum, q, h)
	if init {
		reason += ", reload or startup"
	}
	if !vs.quorumUp && sum >= threshold {
		vs.quorumUp = true
		ev.log.Info("quorum gained", "vs", vs.cfg.Name, "from", "down", "to", "up", "reason", reason)
		if vs.sorryActive() {
			vs.sorry.alive = false
			vs.sorry.lastChange = ev.now
			ev.log.Info("sorry server out", "vs", vs.cfg.Name, "rs", vs.sorry.key().String(),
				"from", "in", "to", "out", "reason", "quorum gained")
		}
		ev.notifyVS(vs)
		return
	}
	if (vs.quorumUp && (sum == 0 || sum < threshold)) ||
		(init && !vs.quorumUp && vs.sorry != nil && !vs.sorry.alive) {
		if vs.quorumUp {
			ev.log.Info("quorum lost", "vs", vs.cfg.Name, "from", "up", "to", "down", "reason", reason)
		} else {
			ev.log.Info("starting with quorum down", "vs", vs.cfg.Name, "from", "down", "to", "down", "reason", reason)
		}
		vs.quorumUp = false
		if vs.sorry != nil && !vs.sorry.alive {
			vs.sorry.alive = true
			vs.sorry.lastChange = ev.now
			ev.log.Info("sorry server in", "vs", vs.cfg.Name, "rs", vs.sorry.key().String(),
				"from", "out", "to", "in", "reason", "quorum down")
		}
		ev.notifyVS(vs)
	}
}

// updateWeight is update_svr_wgt after the effective weight of r moved
// from before: logged when its IPVS weight changes, then (when asked)
// the quorum is re-evaluated.
func (ev *event) updateWeight(vs *vsState, r *rsState, before int64, updateQuorum bool) {
	from, to := realWeight(before), realWeight(r.effective())
	if from == to {
		return
	}
	ev.log.Info("real server weight changed", "vs", vs.cfg.Name, "rs", r.key().String(),
		"from", from, "to", to, "reason", "dynamic weight or reload", "alive", r.alive)
	if updateQuorum {
		ev.updateQuorumState(vs, false)
	}
}

// updateVSNotifies is update_vs_notifies, run when real servers are
// removed and at shutdown: the quorum goes down without a sorry server
// coming in (keepalived: "the regression is intended"), and at shutdown
// always, running quorum_down only with omega.
func (ev *event) updateVSNotifies(vs *vsState, stopping bool) {
	sum := vs.weightSum()
	threshold := int64(vs.cfg.Quorum) - int64(vs.cfg.Hysteresis)
	if !stopping && !(vs.quorumUp && (sum == 0 || sum < threshold)) {
		return
	}
	if vs.quorumUp {
		ev.log.Info("quorum lost", "vs", vs.cfg.Name, "from", "up", "to", "down",
			"reason", fmt.Sprintf("virtual server removed, alive weight %d", sum))
	}
	vs.quorumUp = false
	if stopping && !vs.cfg.Omega {
		return
	}
	ev.notifyVS(vs)
}

// clearRS is clear_service_rs: a real server leaves IPVS because it was
// removed from the configuration or the manager stops. A server that is
// in IPVS and alive goes down and runs notify_down (at shutdown only with
// omega); one that is not in IPVS (the sorry server replaced it) leaves
// silently. The IPVS removal itself is the caller's.
func (ev *event) clearRS(vs *vsState, r *rsState, stopping bool) {
	if _, set := vs.prog[r.key()]; !set || !r.alive {
		return
	}
	r.alive = false
	r.lastChange = ev.now
	reason := "removed from the configuration"
	if stopping {
		reason = "shutdown"
	}
	ev.log.Info("real server down", "vs", vs.cfg.Name, "rs", r.key().String(),
		"from", "up", "to", "down", "reason", reason)
	if stopping && !vs.cfg.Omega {
		return
	}
	ev.notifyRS(vs, r)
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}
