package vrrpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golvs/internal/vrrp"
)

// Bounds of a unit's queues and buffers.
const (
	// rxQueue is the number of received adverts waiting for the unit's
	// goroutine: adverts come a few per second per peer; the queue only
	// absorbs a burst while the goroutine adds addresses.
	rxQueue = 64
	// readBuf is the receive buffer: the largest IPv4 packet an advert
	// can be (IPv6 ones are smaller: 8 + 255 × 16 bytes of payload).
	readBuf = maxAdvertIP
	// logEvery rate-limits repeated warnings (send and read errors,
	// failed announcements) per instance (style.md §7.4).
	logEvery = 10 * time.Second
)

// rxPacket is one advert read by a member's reader.
type rxPacket struct {
	m    *member
	buf  []byte
	info pktInfo
	at   time.Time
}

// unit is one goroutine's worth of VRRP: a lone instance or a sync
// group. Its goroutine (run) owns the vrrp.Instance(s) and vrrp.Group and
// every member's fields not marked otherwise.
type unit struct {
	d       *Daemon
	spec    *unitSpec
	log     *slog.Logger
	members []*member
	byName  map[string]*member
	group   *vrrp.Group

	rx    chan rxPacket
	kick  chan struct{} // re-read the trackers; capacity 1, coalescing
	stopc chan bool     // the stop request: true when the unit is deleted
	done  chan struct{} // closed when run has returned
	quit  chan struct{} // closed when run stops reading rx

	readers  sync.WaitGroup
	bursts   sync.WaitGroup // spaced announcement bursts
	deleting bool
}

// member is one instance of a unit.
type member struct {
	u     *unit
	spec  *instSpec
	vi    *vrrp.Instance
	conn  advertConn
	link  linkInfo
	local netip.Addr
	dsts  []netip.Addr
	buf   []byte // the advert being sent

	annMu      sync.Mutex // announcers, used by spaced bursts too
	announcers map[string]announcer
	burstStop  context.CancelFunc // cancels spaced bursts in flight; nil when none
	burstCtx   context.Context

	prev    vrrp.State
	warned  map[string]time.Time // rate limit of warnings, by kind
	readErr time.Time            // rate limit of read errors (reader goroutine)

	mu      sync.Mutex // guards st, rejects, errs and warned (Status reads them)
	st      Status
	rejects map[string]uint64
	errs    map[string]uint64
}

// startUnit opens a unit's sockets and starts its goroutine, which
// starts the instances after delay.
func (d *Daemon) startUnit(s *unitSpec, delay time.Duration) (*unit, error) {
	u := &unit{
		d: d, spec: s, log: d.log.With("unit", s.Key), byName: map[string]*member{},
		rx: make(chan rxPacket, rxQueue), kick: make(chan struct{}, 1), stopc: make(chan bool, 1),
		done: make(chan struct{}), quit: make(chan struct{}),
	}
	// The addresses an instance must not take for its own: every VIP
	// of the unit (a killed master leaves them behind).
	vips := map[netip.Addr]bool{}
	for _, is := range s.Members {
		for _, v := range is.VIPs {
			vips[v.Prefix.Addr()] = true
		}
	}
	skip := func(a netip.Addr) bool { return vips[a] }
	for _, is := range s.Members {
		m, err := u.newMember(is, skip)
		if err != nil {
			u.closeMembers()
			return nil, fmt.Errorf("vrrp_instance %s: %w", is.Name, err)
		}
		u.members = append(u.members, m)
		u.byName[is.Name] = m
	}
	if s.Group != "" {
		var vis []*vrrp.Instance
		for _, m := range u.members {
			vis = append(vis, m.vi)
		}
		g, err := vrrp.NewGroup(s.Group, vis...)
		if err != nil {
			u.closeMembers()
			return nil, err
		}
		u.group = g
	}
	u.removeLeftovers()
	d.acquireScripts(s)
	now := time.Now()
	for _, m := range u.members {
		m.track(now) // before Start: recorded only
	}
	for _, m := range u.members {
		u.readers.Add(1)
		go m.read()
	}
	go u.run(delay)
	return u, nil
}

// newMember resolves an instance's interface and address and opens its
// socket.
func (u *unit) newMember(is *instSpec, skip func(netip.Addr) bool) (*member, error) {
	sys := u.d.sys
	var link linkInfo
	var err error
	if is.Iface != "" {
		link, err = sys.Link(is.Iface)
	} else {
		link, err = sys.LinkOfAddr(is.SrcIP)
	}
	if err != nil {
		return nil, err
	}
	local := is.SrcIP
	if !local.IsValid() {
		if local, err = sys.PrimaryAddr(link, is.Family, skip); err != nil {
			return nil, err
		}
	}
	if local.Is6() && local.IsLinkLocalUnicast() && local.Zone() == "" {
		local = local.WithZone(link.Name)
	}
	cfg := is.Proto
	cfg.LocalAddr = local
	vi, err := vrrp.NewInstance(cfg)
	if err != nil {
		return nil, err
	}
	m := &member{
		u: u, spec: is, vi: vi, link: link, local: local,
		announcers: map[string]announcer{}, warned: map[string]time.Time{},
		rejects: map[string]uint64{}, errs: map[string]uint64{}, prev: vrrp.Init,
	}
	if is.McastGroup.IsValid() {
		m.dsts = []netip.Addr{is.McastGroup}
	} else {
		m.dsts = slices.Clone(cfg.UnicastPeers)
	}
	m.conn, err = sys.ListenAdverts(sockSpec{Family: is.Family, Link: link, Local: local, Group: is.McastGroup, TTL: is.UnicastTTL})
	if err != nil {
		return nil, err
	}
	c := vi.Config()
	m.st = Status{
		Instance: is.Name, Group: is.Group, Interface: link.Name, Family: is.Family.String(),
		VRID: c.VRID, Version: c.Version, Unicast: c.Unicast(), Address: local.WithZone(""),
		State: vrrp.Init, Priority: c.Priority, EffectivePriority: vi.Priority(),
		AdvertInterval: c.AdvertInt,
	}
	for _, v := range is.VIPs {
		m.st.VIPs = append(m.st.VIPs, v.Prefix)
	}
	return m, nil
}

// removeLeftovers removes the unit's VIPs that are on their interfaces
// although no instance of this daemon holds them: left by an lvsd that
// was killed (SIGKILL) while master. keepalived 2.2.7 does the same at
// startup (measured: an address with the VIP's address and prefix length
// is removed; one with another prefix length stays). A new master then
// adds them again, so at most one director holds a VIP.
func (u *unit) removeLeftovers() {
	d := u.d
	for _, m := range u.members {
		for _, v := range m.spec.VIPs {
			d.mu.Lock()
			owner, held := d.held[v.Prefix]
			d.mu.Unlock()
			if held && owner != u.spec.Key {
				continue // another running instance's (a configuration mistake)
			}
			has, err := d.sys.HasAddr(v)
			if err != nil || !has {
				continue
			}
			if err := d.sys.DelAddr(v); err != nil {
				u.log.Warn("cannot remove a VIP left on its interface", "vip", v.String(), "err", err)
				continue
			}
			u.log.Info("removed a VIP left on its interface (by a killed lvsd?)", "instance", m.spec.Name, "vip", v.String())
		}
	}
}

// closeMembers closes the sockets of a unit that did not start.
func (u *unit) closeMembers() {
	for _, m := range u.members {
		m.conn.Close()
	}
}

// kickTrackers asks the unit to re-read its trackers (non-blocking).
func (u *unit) kickTrackers() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// stop asks the unit to shut down and waits until it has: priority 0
// from a master, VIPs removed, sockets closed. deleted says the
// instances were removed from the configuration (notify_deleted or
// notify_fault instead of notify_stop, as keepalived's reload).
func (u *unit) stop(deleted bool) {
	u.stopc <- deleted
	<-u.done
}

// run is the unit's goroutine.
func (u *unit) run(delay time.Duration) {
	defer close(u.done)
	if delay > 0 {
		u.log.Info("VRRP startup delay", "seconds", delay.Seconds())
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case deleted := <-u.stopc:
			t.Stop()
			u.finish(deleted)
			return
		}
	}
	now := time.Now()
	u.track(now)
	if u.group != nil {
		u.perform(now, u.group.Start(now))
	} else {
		u.perform(now, u.members[0].vi.Start(now))
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if dl := u.deadline(); !dl.IsZero() {
			timer.Reset(time.Until(dl))
		} else {
			timer.Stop()
		}
		select {
		case p := <-u.rx:
			u.receive(p)
		case <-u.kick:
			u.track(time.Now())
		case <-timer.C:
			now := time.Now()
			if u.group != nil {
				u.perform(now, u.group.Tick(now))
			} else {
				u.perform(now, u.members[0].vi.Tick(now))
			}
		case deleted := <-u.stopc:
			u.finish(deleted)
			return
		}
	}
}

// deadline is when the unit's timers next need a Tick.
func (u *unit) deadline() time.Time {
	if u.group != nil {
		return u.group.NextDeadline()
	}
	return u.members[0].vi.NextDeadline()
}

// finish shuts the instances down and releases everything.
func (u *unit) finish(deleted bool) {
	u.deleting = deleted
	now := time.Now()
	if u.group != nil {
		u.perform(now, u.group.Shutdown(now))
	} else {
		u.perform(now, u.members[0].vi.Shutdown(now))
	}
	close(u.quit)
	for _, m := range u.members {
		m.stopBursts()
		m.conn.Close()
	}
	u.readers.Wait()
	u.bursts.Wait()
	for _, m := range u.members {
		m.annMu.Lock()
		for dev, a := range m.announcers {
			a.Close()
			delete(m.announcers, dev)
		}
		m.annMu.Unlock()
	}
}

// read is a member's reader goroutine: it reads adverts until the socket
// is closed and hands them to the unit.
func (m *member) read() {
	u := m.u
	defer u.readers.Done()
	for {
		buf := make([]byte, readBuf)
		n, info, err := m.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-u.quit:
				return
			default:
			}
			m.fail("read_error")
			if time.Since(m.readErr) > logEvery {
				m.readErr = time.Now()
				u.log.Warn("reading adverts", "instance", m.spec.Name, "err", err)
			}
			// A persistent error must not spin.
			select {
			case <-u.quit:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		select {
		case u.rx <- rxPacket{m: m, buf: buf[:n], info: info, at: time.Now()}:
		case <-u.quit:
			return
		}
	}
}

// receive checks an advert and steps the instance with it.
func (u *unit) receive(p rxPacket) {
	m := p.m
	info := p.info
	if info.IfIndex != 0 && info.IfIndex != m.link.Index {
		return // another interface's (the socket is bound; a race at most)
	}
	src := info.Src.WithZone("")
	if src == m.local.WithZone("") {
		return // our own, looped back
	}
	cfg := m.vi.Config()
	a, err := m.vi.Codec().Decode(p.buf, m.spec.Family, info.Src, info.Dst)
	if err == nil {
		err = vrrp.CheckIPHeader(uint8(min(max(info.TTL, 0), 255)), info.Dst, cfg.Unicast())
	}
	var acts []vrrp.Action
	if err == nil {
		acts, err = m.vi.Advert(p.at, info.Src, a)
	}
	if err != nil {
		m.count(rejectReason(err))
		return
	}
	u.perform(p.at, acts)
	m.mu.Lock()
	m.st.AdvertsReceived++
	m.st.LastAdvertPriority = a.Priority
	if a.Priority != vrrp.PriorityStop && m.vi.State() == vrrp.Backup {
		m.st.Master = src
	}
	m.mu.Unlock()
}

// track re-reads every member's trackers and steps the instances with
// their effective priority and fault.
func (u *unit) track(now time.Time) {
	for _, m := range u.members {
		u.perform(now, m.track(now))
	}
}

// track is unit.track for one member; it returns the actions.
func (m *member) track(now time.Time) []vrrp.Action {
	ts, faults := m.u.d.trackers(m)
	prio, fault := vrrp.EffectivePriority(m.vi.Config().Priority, ts)
	var acts []vrrp.Action
	if prio != m.vi.Priority() {
		acts = append(acts, m.vi.PriorityChange(now, prio)...)
	}
	acts = append(acts, m.vi.Fault(now, fault)...)
	m.mu.Lock()
	m.st.Faults = faults
	m.st.EffectivePriority = m.vi.Priority()
	m.mu.Unlock()
	return acts
}

// perform does what a step asked, in order, then reports the states
// that changed.
func (u *unit) perform(now time.Time, acts []vrrp.Action) {
	d := u.d
	for _, a := range acts {
		if a.Kind == vrrp.RunNotify && a.Group != "" {
			d.notify.enqueue(u.spec.Key, groupNotify(u.spec.Key, a.Group, &u.spec.Notify, a.State.String())...)
			continue
		}
		m := u.byName[a.Instance]
		if m == nil {
			continue // not one of ours: cannot happen
		}
		switch a.Kind {
		case vrrp.SendAdvert:
			m.sendAdvert(a.Priority)
		case vrrp.BecomeMaster:
			m.addVIPs()
		case vrrp.BecomeBackup, vrrp.BecomeFault, vrrp.Stopped:
			if a.Release {
				m.releaseVIPs()
			}
		case vrrp.SendGARP:
			m.announce(a.Count)
		case vrrp.RunNotify:
			state := a.State.String()
			if a.State == vrrp.Stop && u.deleting {
				// keepalived's reload reports a deleted instance as
				// FAULT, or DELETED with notify_deleted.
				state = "FAULT"
				if m.spec.Notify.DeletedState {
					state = "DELETED"
				}
			}
			d.notify.enqueue(u.spec.Key, instanceNotify(u.spec.Key, m.spec.Name, &m.spec.Notify, state, m.vi.Priority())...)
		case vrrp.NotifyRxLowerPrio:
			if s := m.spec.Notify.MasterRxLowerPri; s != nil {
				d.notify.enqueue(u.spec.Key, notifyJob{script: s, what: "notify_master_rx_lower_pri", unit: u.spec.Key})
			}
		case vrrp.PriorityChanged:
			u.log.Info("VRRP effective priority changed", "instance", m.spec.Name, "priority", a.Priority)
		}
	}
	for _, m := range u.members {
		m.afterStep(now)
	}
}

// afterStep records a state change of m and reports it.
func (m *member) afterStep(now time.Time) {
	s := m.vi.State()
	m.mu.Lock()
	m.st.EffectivePriority = m.vi.Priority()
	changed := s != m.prev
	if changed {
		m.st.State = s
		m.st.Transitions++
		m.st.LastTransition = now
		// As MASTER the master is us; otherwise it is unknown until
		// the next advert accepted in BACKUP.
		m.st.Master = netip.Addr{}
		if s == vrrp.Master {
			m.st.Master = m.local.WithZone("")
		}
	}
	m.mu.Unlock()
	if !changed {
		return
	}
	m.prev = s
	m.u.log.Info("VRRP state", "instance", m.spec.Name, "state", s.String(), "priority", m.vi.Priority())
	if f := m.u.d.onState; f != nil {
		f(m.spec.Name, s)
	}
}

// sendAdvert sends an advert with priority prio to every destination.
func (m *member) sendAdvert(prio uint8) {
	a := m.vi.Build(prio)
	codec := m.vi.Codec()
	for _, dst := range m.dsts {
		m.buf = codec.Append(m.buf[:0], a, m.local, dst)
		if err := m.conn.Write(m.buf, m.local, dst); err != nil {
			m.fail("send_error")
			m.warn("send", "sending an advert", "dst", dst, "err", err)
			continue
		}
		m.mu.Lock()
		m.st.AdvertsSent++
		m.mu.Unlock()
	}
}

// addVIPs puts the instance's virtual addresses on their interfaces.
func (m *member) addVIPs() {
	d := m.u.d
	for _, v := range m.spec.VIPs {
		if err := d.sys.AddAddr(v); err != nil {
			m.fail("vip_error")
			m.u.log.Error("cannot add a VIP", "instance", m.spec.Name, "vip", v.String(), "err", err)
			continue
		}
		d.mu.Lock()
		d.held[v.Prefix] = m.u.spec.Key
		d.mu.Unlock()
	}
}

// releaseVIPs removes the instance's virtual addresses, at once.
func (m *member) releaseVIPs() {
	m.stopBursts()
	d := m.u.d
	for _, v := range m.spec.VIPs {
		if err := d.sys.DelAddr(v); err != nil {
			m.fail("vip_error")
			m.u.log.Error("cannot remove a VIP", "instance", m.spec.Name, "vip", v.String(), "err", err)
		}
		d.mu.Lock()
		if d.held[v.Prefix] == m.u.spec.Key {
			delete(d.held, v.Prefix)
		}
		d.mu.Unlock()
	}
}

// announce sends count gratuitous ARPs / unsolicited neighbour adverts
// for every VIP, in rounds over the VIPs as keepalived's
// vrrp_send_link_update. Without vrrp_garp_interval / vrrp_gna_interval
// the burst goes out at once; with them it is spaced on its own
// goroutine, cancelled when the VIPs are released.
func (m *member) announce(count int) {
	u := m.u
	spaced := u.spec.GARPInterval > 0 || u.spec.GNAInterval > 0
	if !spaced {
		m.annMu.Lock()
		defer m.annMu.Unlock()
		for range count {
			for _, v := range m.spec.VIPs {
				m.announceOne(v)
			}
		}
		return
	}
	if m.burstStop == nil {
		ctx, cancel := context.WithCancel(context.Background())
		m.burstStop = cancel
		m.burstCtx = ctx
	}
	ctx := m.burstCtx
	u.bursts.Add(1)
	go func() {
		defer u.bursts.Done()
		m.annMu.Lock()
		defer m.annMu.Unlock()
		for i := range count {
			for _, v := range m.spec.VIPs {
				gap := u.spec.GARPInterval
				if v.Prefix.Addr().Is6() {
					gap = u.spec.GNAInterval
				}
				if i > 0 || v != m.spec.VIPs[0] {
					t := time.NewTimer(gap)
					select {
					case <-ctx.Done():
						t.Stop()
						return
					case <-t.C:
					}
				}
				m.announceOne(v)
			}
		}
	}()
}

// announceOne sends one announcement of v. Called with annMu held.
func (m *member) announceOne(v vipSpec) {
	a := m.announcers[v.Dev]
	if a == nil {
		l := m.link
		if v.Dev != l.Name {
			var err error
			if l, err = m.u.d.sys.Link(v.Dev); err != nil {
				m.fail("announce_error")
				m.warn("announce", "cannot announce a VIP", "vip", v.String(), "err", err)
				return
			}
		}
		var err error
		if a, err = m.u.d.sys.OpenAnnouncer(l); err != nil {
			m.fail("announce_error")
			m.warn("announce", "cannot announce a VIP", "vip", v.String(), "err", err)
			return
		}
		m.announcers[v.Dev] = a
	}
	if err := a.Announce(v.Prefix.Addr()); err != nil {
		m.fail("announce_error")
		m.warn("announce", "cannot announce a VIP", "vip", v.String(), "err", err)
		return
	}
	m.mu.Lock()
	m.st.Announcements++
	m.mu.Unlock()
}

// stopBursts cancels the spaced bursts in flight.
func (m *member) stopBursts() {
	if m.burstStop != nil {
		m.burstStop()
		m.burstStop, m.burstCtx = nil, nil
	}
}

// count adds one to the rejected adverts of reason.
func (m *member) count(reason string) {
	m.mu.Lock()
	m.rejects[reason]++
	m.mu.Unlock()
}

// fail adds one to the errors of kind.
func (m *member) fail(kind string) {
	m.mu.Lock()
	m.errs[kind]++
	m.mu.Unlock()
}

// warn logs a warning of kind at most once per logEvery. Called from the
// unit's goroutine (or a burst's, under annMu: kinds differ).
func (m *member) warn(kind, msg string, args ...any) {
	now := time.Now()
	m.mu.Lock()
	last := m.warned[kind]
	if now.Sub(last) < logEvery && !last.IsZero() {
		m.mu.Unlock()
		return
	}
	m.warned[kind] = now
	m.mu.Unlock()
	m.u.log.Warn(msg, append([]any{"instance", m.spec.Name}, args...)...)
}

// status returns a copy of the member's status.
func (m *member) status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.st
	s.Rejects = maps.Clone(m.rejects)
	s.Errors = maps.Clone(m.errs)
	s.VIPs = slices.Clone(s.VIPs)
	s.Faults = slices.Clone(s.Faults)
	return s
}
