package vrrpd

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golvs/internal/vrrp"
)

// fakeLAN is an in-memory Ethernet segment for the daemon's tests: hosts
// with links, addresses and advert sockets; what one host's socket sends
// reaches the sockets of the others that joined the group (or own the
// unicast destination), over links that are up. It records every advert
// sent and every announcement, with the (synctest) time.
type fakeLAN struct {
	mu      sync.Mutex
	hosts   []*fakeHost
	adverts []sentAdvert
}

// sentAdvert is one advert a host sent.
type sentAdvert struct {
	at       time.Time
	host     string
	src, dst netip.Addr
	vrid     uint8
	prio     uint8
}

type fakeHost struct {
	lan  *fakeLAN
	name string

	mu       sync.Mutex
	links    map[string]*linkInfo
	addrs    map[string][]netip.Prefix // by interface: primary address first, then the VIPs added
	conns    []*fakeConn
	watchers []chan linkInfo
	crashed  bool // sends nothing (a SIGKILLed lvsd)
	announce []announcement
	events   []string // "add VIP", "del VIP": the address changes in order
}

type announcement struct {
	at   time.Time
	dev  string
	addr netip.Addr
}

func newLAN() *fakeLAN { return &fakeLAN{} }

// host adds a host with interface eth0 (MAC from n) holding addr/24 (and
// an IPv6 link-local address).
func (l *fakeLAN) host(name string, n byte, addr string) *fakeHost {
	h := &fakeHost{lan: l, name: name, links: map[string]*linkInfo{}, addrs: map[string][]netip.Prefix{}}
	h.links["eth0"] = &linkInfo{Name: "eth0", Index: 2, MAC: net.HardwareAddr{2, 0, 0, 0, 0, n}, Up: true}
	h.addrs["eth0"] = []netip.Prefix{
		netip.MustParsePrefix(addr + "/24"),
		netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 15: n}), 64),
	}
	l.mu.Lock()
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()
	return h
}

// sys returns a netSys of h (each daemon gets its own).
func (h *fakeHost) sys() netSys { return &fakeSys{h: h} }

// setLink changes a link's state and tells the watchers.
func (h *fakeHost) setLink(name string, up bool) {
	h.mu.Lock()
	l := h.links[name]
	l.Up = up
	info := *l
	ws := slices.Clone(h.watchers)
	h.mu.Unlock()
	for _, w := range ws {
		w <- info
	}
}

// crash makes the host send nothing more (its lvsd was SIGKILLed: the
// addresses stay, the sockets are gone).
func (h *fakeHost) crash() {
	h.mu.Lock()
	h.crashed = true
	h.mu.Unlock()
}

// revive undoes crash (lvsd restarted).
func (h *fakeHost) revive() {
	h.mu.Lock()
	h.crashed = false
	h.conns = nil
	h.mu.Unlock()
}

// vips returns the host's /32 and /128 addresses (the tests' VIPs; its
// own addresses have shorter prefixes), as text.
func (h *fakeHost) vips() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for dev, ps := range h.addrs {
		for _, p := range ps {
			if p.IsSingleIP() {
				out = append(out, p.String()+"@"+dev)
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func (h *fakeHost) announcements() []announcement {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.announce)
}

func (h *fakeHost) addrEvents() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

// advertsFrom returns the adverts host sent since from.
func (l *fakeLAN) advertsFrom(host string, from time.Time) []sentAdvert {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sentAdvert
	for _, a := range l.adverts {
		if a.host == host && !a.at.Before(from) {
			out = append(out, a)
		}
	}
	return out
}

// inject delivers a packet to every socket of h as if received.
func (h *fakeHost) inject(b []byte, p pktInfo) {
	h.mu.Lock()
	conns := slices.Clone(h.conns)
	h.mu.Unlock()
	for _, c := range conns {
		c.deliver(b, p)
	}
}

// fakeSys is the netSys of one daemon on a fakeHost.
type fakeSys struct{ h *fakeHost }

func (s *fakeSys) Link(name string) (linkInfo, error) {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.links[name]
	if l == nil {
		return linkInfo{}, fmt.Errorf("interface %s: no such device", name)
	}
	return *l, nil
}

func (s *fakeSys) LinkOfAddr(a netip.Addr) (linkInfo, error) {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	for dev, ps := range h.addrs {
		for _, p := range ps {
			if p.Addr() == a.WithZone("") {
				return *h.links[dev], nil
			}
		}
	}
	return linkInfo{}, fmt.Errorf("no interface has %v", a)
}

func (s *fakeSys) PrimaryAddr(l linkInfo, fam vrrp.Family, skip func(netip.Addr) bool) (netip.Addr, error) {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.addrs[l.Name] {
		a := p.Addr()
		if skip(a) || vrrp.FamilyOf(a) != fam || fam == vrrp.IPv6 && !a.IsLinkLocalUnicast() {
			continue
		}
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("%s has no address", l.Name)
}

func (s *fakeSys) ListenAdverts(sp sockSpec) (advertConn, error) {
	c := &fakeConn{h: s.h, spec: sp, in: make(chan fakePkt, 64), closed: make(chan struct{})}
	s.h.mu.Lock()
	s.h.conns = append(s.h.conns, c)
	s.h.mu.Unlock()
	return c, nil
}

func (s *fakeSys) AddAddr(v vipSpec) error {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.links[v.Dev] == nil {
		return fmt.Errorf("no device %s", v.Dev)
	}
	if !slices.Contains(h.addrs[v.Dev], v.Prefix) {
		h.addrs[v.Dev] = append(h.addrs[v.Dev], v.Prefix)
		h.events = append(h.events, "add "+v.Prefix.String())
	}
	return nil
}

func (s *fakeSys) DelAddr(v vipSpec) error {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	ps := h.addrs[v.Dev]
	if i := slices.Index(ps, v.Prefix); i >= 0 {
		h.addrs[v.Dev] = slices.Delete(ps, i, i+1)
		h.events = append(h.events, "del "+v.Prefix.String())
	}
	return nil
}

func (s *fakeSys) HasAddr(v vipSpec) (bool, error) {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Contains(h.addrs[v.Dev], v.Prefix), nil
}

func (s *fakeSys) OpenAnnouncer(l linkInfo) (announcer, error) {
	return &fakeAnnouncer{h: s.h, dev: l.Name}, nil
}

func (s *fakeSys) WatchLinks(ctx context.Context, fn func(string, bool), started func()) error {
	h := s.h
	ch := make(chan linkInfo, 16)
	h.mu.Lock()
	h.watchers = append(h.watchers, ch)
	var ls []linkInfo
	for _, l := range h.links {
		ls = append(ls, *l)
	}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.watchers = slices.DeleteFunc(h.watchers, func(c chan linkInfo) bool { return c == ch })
		h.mu.Unlock()
	}()
	for _, l := range ls {
		fn(l.Name, l.Up)
	}
	started()
	for {
		select {
		case <-ctx.Done():
			return nil
		case l := <-ch:
			fn(l.Name, l.Up)
		}
	}
}

func (s *fakeSys) Close() error { return nil }

type fakeAnnouncer struct {
	h   *fakeHost
	dev string
}

func (a *fakeAnnouncer) Announce(addr netip.Addr) error {
	a.h.mu.Lock()
	a.h.announce = append(a.h.announce, announcement{at: time.Now(), dev: a.dev, addr: addr})
	a.h.mu.Unlock()
	return nil
}

func (a *fakeAnnouncer) Close() error { return nil }

type fakePkt struct {
	b []byte
	p pktInfo
}

// fakeConn is an advert socket on a fakeHost.
type fakeConn struct {
	h      *fakeHost
	spec   sockSpec
	in     chan fakePkt
	closed chan struct{}
	once   sync.Once
}

func (c *fakeConn) Read(b []byte) (int, pktInfo, error) {
	select {
	case p := <-c.in:
		return copy(b, p.b), p.p, nil
	case <-c.closed:
		return 0, pktInfo{}, net.ErrClosed
	}
}

// deliver queues a received packet (dropped when the queue is full or
// the socket closed, as the kernel does).
func (c *fakeConn) deliver(b []byte, p pktInfo) {
	select {
	case <-c.closed:
		return
	default:
	}
	p.IfIndex = c.spec.Link.Index
	select {
	case c.in <- fakePkt{b: slices.Clone(b), p: p}:
	default:
	}
}

func (c *fakeConn) Write(b []byte, src, dst netip.Addr) error {
	h := c.h
	lan := h.lan
	h.mu.Lock()
	crashed := h.crashed
	up := h.links[c.spec.Link.Name].Up
	h.mu.Unlock()
	select {
	case <-c.closed:
		return net.ErrClosed
	default:
	}
	if crashed {
		return nil
	}
	if !up {
		return fmt.Errorf("network is down")
	}
	a, err := vrrp.Codec{}.Decode(b, c.spec.Family, src, dst)
	if err != nil {
		return fmt.Errorf("fake LAN: sent a bad advert: %w", err)
	}
	lan.mu.Lock()
	lan.adverts = append(lan.adverts, sentAdvert{at: time.Now(), host: h.name, src: src, dst: dst, vrid: a.VRID, prio: a.Priority})
	hosts := slices.Clone(lan.hosts)
	lan.mu.Unlock()
	ttl := vrrp.TTL
	if !dst.IsMulticast() && c.spec.TTL > 0 {
		ttl = c.spec.TTL
	}
	for _, o := range hosts {
		if o == h {
			continue // multicast loop off
		}
		for _, oc := range o.receivers(c.spec.Family, dst) {
			oc.deliver(b, pktInfo{Src: src.WithZone(""), Dst: dst, TTL: ttl})
		}
	}
	return nil
}

// receivers returns h's sockets that receive an advert of family fam to
// dst: on a link that is up, joined to the group or owning dst.
func (h *fakeHost) receivers(fam vrrp.Family, dst netip.Addr) []*fakeConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	mine := false
	for _, ps := range h.addrs {
		for _, p := range ps {
			mine = mine || p.Addr() == dst.WithZone("")
		}
	}
	var out []*fakeConn
	for _, oc := range h.conns {
		l := h.links[oc.spec.Link.Name]
		switch {
		case l == nil || !l.Up || oc.spec.Family != fam:
		case dst.IsMulticast() && oc.spec.Group != dst:
		case !dst.IsMulticast() && !mine:
		default:
			out = append(out, oc)
		}
	}
	return out
}

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
