package hostnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// DefaultTable is the name of lvsd's nftables table (family netdev).
const DefaultTable = "golvs"

// ingressPriority is the priority of the ingress chains: before netdev
// chains at the usual filter priority (0), so that their rules and
// counters do not take service traffic for their own. (Nothing at
// ingress can keep the traffic from the data path: its AF_PACKET tap
// runs before every hook.)
const ingressPriority = -500

// Protocol numbers of the transport protocols a virtual service can have.
const (
	protoTCP  = unix.IPPROTO_TCP
	protoUDP  = unix.IPPROTO_UDP
	protoSCTP = unix.IPPROTO_SCTP
)

// Match selects packets by one end's address, protocol and port.
type Match struct {
	// Addr is the address (a VIP, a real server), or a network for the
	// destinations of a firewall-mark rule (`-d 198.18.100.0/24`).
	Addr netip.Prefix
	// Proto is TCP, UDP or SCTP (6, 17, 132); 0 means all three.
	Proto uint8
	// Port, with PortLast 0, is a single port; Port..PortLast a range;
	// 0 and 0 every port (a port-0 persistent service, a mark rule
	// without ports).
	Port, PortLast uint16
}

// exact reports whether m is one address, protocol and port, which goes in
// the set; others become rules of their own.
func (m Match) exact() bool {
	return m.Addr.IsSingleIP() && m.Proto != 0 && m.Port != 0 && (m.PortLast == 0 || m.PortLast == m.Port)
}

// ports returns m's port range.
func (m Match) ports() (lo, hi uint16) {
	switch {
	case m.Port == 0 && m.PortLast == 0:
		return 0, 0xffff
	case m.PortLast < m.Port:
		return m.Port, m.Port
	}
	return m.Port, m.PortLast
}

// protos returns the protocols m names.
func (m Match) protos() []uint8 {
	if m.Proto == 0 {
		return []uint8{protoTCP, protoUDP, protoSCTP}
	}
	return []uint8{m.Proto}
}

// normalized returns m with an IPv4-mapped IPv6 prefix turned into the
// IPv4 one and host bits cleared; ok is false for an invalid prefix or a
// protocol that is not TCP, UDP or SCTP.
func (m Match) normalized() (Match, bool) {
	if !m.Addr.IsValid() {
		return m, false
	}
	switch m.Proto {
	case 0, protoTCP, protoUDP, protoSCTP:
	default:
		return m, false
	}
	a, bits := m.Addr.Addr(), m.Addr.Bits()
	if a.Is4In6() {
		if bits < 96 {
			return m, false // spans more than the mapped range
		}
		a, bits = a.Unmap(), bits-96
	}
	m.Addr = netip.PrefixFrom(a, bits).Masked()
	return m, true
}

// IngressRules is what the kernel's stack must leave to the data path.
type IngressRules struct {
	// Interfaces are the devices the data path takes frames from; each
	// gets a netdev ingress chain.
	Interfaces []string
	// Services match the destinations of virtual services: each VIP,
	// protocol and port, and the classes of firewall-mark services.
	// Only packets to a local address match (fib daddr type local), as
	// IPVS only sees those (NF_INET_LOCAL_IN).
	Services []Match
	// Replies match the sources of NAT real servers (address, protocol,
	// port): their replies to clients, which the data path rewrites.
	// Packets to the director's own addresses do not match (health
	// checks, the director's own connections to its real servers).
	Replies []Match
}

// normalized returns r with its matches normalized and invalid ones left
// out.
func (r IngressRules) normalized() IngressRules {
	norm := func(ms []Match) []Match {
		var out []Match
		for _, m := range ms {
			if n, ok := m.normalized(); ok {
				out = append(out, n)
			}
		}
		return out
	}
	return IngressRules{Interfaces: r.Interfaces, Services: norm(r.Services), Replies: norm(r.Replies)}
}

// Ingress is lvsd's nftables table, which drops at netdev ingress, before
// the host's IP stack, the packets the user-space data path consumes, so
// that the director's stack neither answers them (an RST for the VIP's
// port) nor forwards them a second time. Apply replaces the whole table
// in one transaction; Close removes it. Safe for concurrent use.
//
// The table:
//
//	table netdev golvs {
//	  set svc4 { type ipv4_addr . inet_proto . inet_service }  # exact services
//	  set svc6 { type ipv6_addr . inet_proto . inet_service }
//	  set rep4 { type ipv4_addr . inet_proto . inet_service }  # NAT real servers
//	  set rep6 { type ipv6_addr . inet_proto . inet_service }
//	  chain take {
//	    meta protocol ip ip daddr . meta l4proto . th dport @svc4 fib daddr type local counter drop
//	    meta protocol ip6 ip6 daddr . meta l4proto . th dport @svc6 fib daddr type local counter drop
//	    meta protocol ip ip saddr . meta l4proto . th sport @rep4 fib daddr type != local counter drop
//	    meta protocol ip6 ip6 saddr . meta l4proto . th sport @rep6 fib daddr type != local counter drop
//	    ... one rule per network, port range or any-protocol match
//	  }
//	  chain in-eth0 { type filter hook ingress device "eth0" priority -500; meta pkttype host jump take }
//	}
type Ingress struct {
	h     *Host
	table string

	mu     sync.Mutex // serialises transactions
	closed bool       // guarded by mu
}

// Rule comments: they tell the counters of service rules from those of
// reply rules.
const (
	commentService = "golvs service"
	commentReply   = "golvs nat-reply"
)

// OpenIngress removes a table of that name left by a previous instance
// (killed before it could clean up), then returns an Ingress that creates
// it on the first Apply. table "" means DefaultTable.
func (h *Host) OpenIngress(table string) (*Ingress, error) {
	if table == "" {
		table = DefaultTable
	}
	if _, err := h.RemoveStaleIngress(table); err != nil {
		return nil, err
	}
	return &Ingress{h: h, table: table}, nil
}

// nftConn returns an nftables connection in h's namespace. It batches
// commands until Flush, which opens a netlink socket for the transaction.
func (h *Host) nftConn() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if h.ns.IsOpen() {
		opts = append(opts, nftables.WithNetNSFd(int(h.ns)))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("hostnet: nftables: %w", err)
	}
	return c, nil
}

// RemoveStaleIngress deletes table (DefaultTable if "") of family netdev
// if it exists, and reports whether it did. lvsd calls it at start, for
// the table of an instance that was killed.
func (h *Host) RemoveStaleIngress(table string) (bool, error) {
	if table == "" {
		table = DefaultTable
	}
	conn, err := h.nftConn()
	if err != nil {
		return false, err
	}
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyNetdev)
	if err != nil {
		return false, fmt.Errorf("hostnet: list nftables tables: %w", err)
	}
	found := slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == table })
	if !found {
		return false, nil
	}
	conn.DelTable(&nftables.Table{Name: table, Family: nftables.TableFamilyNetdev})
	if err := conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return false, fmt.Errorf("hostnet: delete stale table %s: %w", table, err)
	}
	return true, nil
}

// Apply replaces the table with one built from r, atomically: one
// nftables transaction deletes the old table and creates the new one, so
// no packet sees neither (the new chains' hooks are registered before the
// old ones go, and a failed transaction leaves the old table as it was).
// Interfaces that do not exist are skipped; Apply again when they appear.
func (g *Ingress) Apply(r IngressRules) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errors.New("hostnet: ingress table closed")
	}
	var devs []string
	for _, name := range r.Interfaces {
		if _, err := g.h.nl.LinkByName(name); err == nil && !slices.Contains(devs, name) {
			devs = append(devs, name)
		}
	}
	c, err := g.h.nftConn()
	if err != nil {
		return err
	}
	t := &nftables.Table{Name: g.table, Family: nftables.TableFamilyNetdev}
	c.AddTable(t) // so that the delete finds one
	c.DelTable(t)
	c.AddTable(t)
	if err := buildIngress(c, t, devs, r.normalized()); err != nil {
		return err // the batch is never sent
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("hostnet: apply ingress table %s: %w", g.table, err)
	}
	return nil
}

// Close removes the table. The Ingress cannot be used afterwards.
func (g *Ingress) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	c, err := g.h.nftConn()
	if err != nil {
		return err
	}
	t := &nftables.Table{Name: g.table, Family: nftables.TableFamilyNetdev}
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("hostnet: delete ingress table %s: %w", g.table, err)
	}
	return nil
}

// IngressCounters counts the packets the table kept from the host's stack.
type IngressCounters struct {
	ServicePackets, ServiceBytes uint64
	ReplyPackets, ReplyBytes     uint64
}

// Counters reads the rules' counters.
func (g *Ingress) Counters() (IngressCounters, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var c IngressCounters
	conn, err := g.h.nftConn()
	if err != nil {
		return c, err
	}
	t := &nftables.Table{Name: g.table, Family: nftables.TableFamilyNetdev}
	rules, err := conn.GetRules(t, &nftables.Chain{Name: chainTake, Table: t})
	if err != nil {
		return c, fmt.Errorf("hostnet: read ingress rules: %w", err)
	}
	for _, r := range rules {
		comment, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		for _, e := range r.Exprs {
			n, ok := e.(*expr.Counter)
			if !ok {
				continue
			}
			switch comment {
			case commentService:
				c.ServicePackets += n.Packets
				c.ServiceBytes += n.Bytes
			case commentReply:
				c.ReplyPackets += n.Packets
				c.ReplyBytes += n.Bytes
			}
		}
	}
	return c, nil
}

// chainTake is the regular chain with the matches; the per-interface base
// chains jump to it.
const chainTake = "take"

// Registers: the 32-bit registers (NFT_REG32_00 on) hold a concatenated
// key; the lookup reads it from there. The fib result and single
// comparisons use NFT_REG_1, which aliases the same storage once the
// lookup is done.
const (
	reg32 = 8 // NFT_REG32_00
	reg1  = 1 // NFT_REG_1
)

// Ethernet types, as meta protocol loads them (network byte order).
var (
	etherIPv4 = binaryutil.BigEndian.PutUint16(unix.ETH_P_IP)
	etherIPv6 = binaryutil.BigEndian.PutUint16(unix.ETH_P_IPV6)
)

// family describes where an address family keeps its addresses.
type family struct {
	ether        []byte
	src, dst     uint32 // offsets in the network header
	addrLen      uint32
	setType      nftables.SetDatatype
	svcSet, rSet string
}

var families = []family{
	{etherIPv4, 12, 16, 4, nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService), "svc4", "rep4"},
	{etherIPv6, 8, 24, 16, nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService), "svc6", "rep6"},
}

// buildIngress queues the table's content on c.
func buildIngress(c *nftables.Conn, t *nftables.Table, devs []string, r IngressRules) error {
	take := c.AddChain(&nftables.Chain{Name: chainTake, Table: t})
	setID := uint32(0)
	for _, f := range families {
		is4 := f.addrLen == 4
		for _, side := range []struct {
			set     string
			matches []Match
			reply   bool
		}{{f.svcSet, r.Services, false}, {f.rSet, r.Replies, true}} {
			// IDs name the sets within the transaction; set here, as
			// the library's own allocator is a global without a lock.
			setID++
			s := &nftables.Set{Table: t, ID: setID, Name: side.set, KeyType: f.setType, Concatenation: true}
			if err := c.AddSet(s, setElements(side.matches, is4)); err != nil {
				return fmt.Errorf("hostnet: set %s: %w", side.set, err)
			}
			c.AddRule(lookupRule(t, take, f, s, side.reply))
			for _, m := range side.matches {
				if m.exact() || m.Addr.Addr().Is4() != is4 {
					continue
				}
				for _, p := range m.protos() {
					c.AddRule(wildRule(t, take, f, m, p, side.reply))
				}
			}
		}
	}
	for _, d := range devs {
		ch := c.AddChain(&nftables.Chain{
			Name: "in-" + d, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookIngress, Priority: nftables.ChainPriorityRef(ingressPriority), Device: d,
		})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			// Frames unicast to this host: the data path leaves the
			// others (broadcast, multicast, promiscuous) to the host.
			&expr.Meta{Key: expr.MetaKeyPKTTYPE, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{unix.PACKET_HOST}},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: chainTake},
		}})
	}
	return nil
}

// setElements returns the exact matches of a family as set keys:
// address, protocol and port, each padded to 4 bytes as concatenations
// are stored in 32-bit registers.
func setElements(ms []Match, is4 bool) []nftables.SetElement {
	var out []nftables.SetElement
	seen := map[string]bool{}
	for _, m := range ms {
		if !m.exact() || m.Addr.Addr().Is4() != is4 {
			continue
		}
		k := concatKey(m.Addr.Addr(), m.Proto, m.Port)
		if !seen[string(k)] {
			seen[string(k)] = true
			out = append(out, nftables.SetElement{Key: k})
		}
	}
	return out
}

// concatKey returns the key addr . proto . port.
func concatKey(a netip.Addr, proto uint8, port uint16) []byte {
	k := a.AsSlice()
	k = append(k, proto, 0, 0, 0)
	k = binary.BigEndian.AppendUint16(k, port)
	return append(k, 0, 0)
}

// keyLoads loads addr . l4proto . port of one side into the 32-bit
// registers from reg32 on.
func keyLoads(f family, reply bool) []expr.Any {
	addrOff, portOff := f.dst, uint32(2) // th dport
	if reply {
		addrOff, portOff = f.src, 0 // th sport
	}
	words := f.addrLen / 4
	return []expr.Any{
		&expr.Payload{DestRegister: reg32, Base: expr.PayloadBaseNetworkHeader, Offset: addrOff, Len: f.addrLen},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32 + words},
		&expr.Payload{DestRegister: reg32 + words + 1, Base: expr.PayloadBaseTransportHeader, Offset: portOff, Len: 2},
	}
}

// localCheck is `fib daddr type local` (services) or `!= local` (replies).
func localCheck(reply bool) []expr.Any {
	op := expr.CmpOpEq
	if reply {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Fib{Register: reg1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: op, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

func comment(reply bool) []byte {
	c := commentService
	if reply {
		c = commentReply
	}
	return userdata.AppendString(nil, userdata.TypeComment, c)
}

// lookupRule matches the exact set of one family and side.
func lookupRule(t *nftables.Table, ch *nftables.Chain, f family, s *nftables.Set, reply bool) *nftables.Rule {
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: f.ether},
	}
	e = append(e, keyLoads(f, reply)...)
	e = append(e, &expr.Lookup{SourceRegister: reg32, SetName: s.Name, SetID: s.ID})
	e = append(e, localCheck(reply)...)
	e = append(e, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})
	return &nftables.Rule{Table: t, Chain: ch, Exprs: e, UserData: comment(reply)}
}

// wildRule matches a network, a port range or every port, for protocol p.
func wildRule(t *nftables.Table, ch *nftables.Chain, f family, m Match, p uint8, reply bool) *nftables.Rule {
	addrOff, portOff := f.dst, uint32(2)
	if reply {
		addrOff, portOff = f.src, 0
	}
	pfx := m.Addr
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: f.ether},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{p}},
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: addrOff, Len: f.addrLen},
	}
	if pfx.Bits() < pfx.Addr().BitLen() {
		e = append(e, &expr.Bitwise{
			SourceRegister: reg1, DestRegister: reg1, Len: f.addrLen,
			Mask: maskBytes(pfx), Xor: make([]byte, f.addrLen),
		})
	}
	e = append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: pfx.Addr().AsSlice()})
	if lo, hi := m.ports(); lo != 0 || hi != 0xffff {
		e = append(e, &expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: portOff, Len: 2})
		if lo == hi {
			e = append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.BigEndian.PutUint16(lo)})
		} else {
			e = append(e, &expr.Range{Op: expr.CmpOpEq, Register: reg1,
				FromData: binaryutil.BigEndian.PutUint16(lo), ToData: binaryutil.BigEndian.PutUint16(hi)})
		}
	}
	e = append(e, localCheck(reply)...)
	e = append(e, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})
	return &nftables.Rule{Table: t, Chain: ch, Exprs: e, UserData: comment(reply)}
}

// maskBytes returns the netmask of p as bytes.
func maskBytes(p netip.Prefix) []byte {
	n := p.Addr().BitLen() / 8
	b := make([]byte, n)
	for i := 0; i < p.Bits(); i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return b
}
