// Package fwmark classifies packets into firewall marks the way the
// director's mangle rules would, for firewall-mark virtual services
// (ipvsadm -f, keepalived `virtual_server fwmark N`).
//
// In the kernel the mark comes from netfilter: an iptables rule such as
//
//	iptables -t mangle -A PREROUTING -d VIP -p tcp -m multiport --dports 80,443 -j MARK --set-mark 1
//
// (xt_MARK.c, xt_multiport.c; with iptables-nft the same rule lives in
// nftables as native payload matches plus xtables compat expressions) sets
// skb->mark in PREROUTING, and ip_vs_in finds the service by that mark
// (__ip_vs_svc_fwm_find in ip_vs_ctl.c). GoLVS takes packets before
// netfilter runs, so it cannot read the mark: it evaluates the same rules
// itself. A Rule is one translated MARK rule; a Classifier evaluates a
// list of them in order, as the PREROUTING chain would, without
// allocating. The rules come from the host's ruleset (package hostnet
// reads nftables) or from GoLVS's own configuration in iptables-save
// syntax (Parse).
package fwmark

import (
	"fmt"
	"net/netip"
	"strings"
)

// PortRange is an inclusive range of ports.
type PortRange struct{ Lo, Hi uint16 }

func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return fmt.Sprint(r.Lo)
	}
	return fmt.Sprintf("%d:%d", r.Lo, r.Hi)
}

// Rule is one mark rule: when a packet matches every set field, its mark
// becomes (mark &^ Mask) ^ Mark (xt_MARK's formula, which covers
// --set-mark, --set-xmark, --and-mark, --or-mark and --xor-mark, and
// nftables' `meta mark set`). A Rule with Stop ends the evaluation for
// the packets it matches (-j ACCEPT or RETURN in the base chain, an
// nftables accept verdict).
type Rule struct {
	// Family is 4 or 6; 0 matches both (an inet table rule without a
	// family match).
	Family uint8
	// Proto is the transport protocol (6, 17, 132); 0 matches all.
	Proto uint8
	// Src and Dst match the packet's addresses; the zero Prefix matches
	// any. NotSrc and NotDst invert them (iptables `! -s`).
	Src, Dst       netip.Prefix
	NotSrc, NotDst bool
	// SPorts and DPorts match the transport ports; nil matches any. A
	// packet without ports (a later fragment) never matches a rule with
	// ports.
	SPorts, DPorts []PortRange
	// InIface is the input interface (-i, iifname); "" matches any; a
	// trailing "+" matches a prefix, as in iptables.
	InIface string
	// Mark and Mask: the new mark is (old &^ Mask) ^ Mark.
	Mark, Mask uint32
	// Stop ends the evaluation for matching packets. A rule may only
	// stop (Mask and Mark both zero).
	Stop bool
	// Origin says where the rule came from, for messages ("table ip
	// mangle chain PREROUTING handle 4", "rules.conf:3").
	Origin string
}

// SetsMark reports whether r changes the mark of the packets it matches.
func (r *Rule) SetsMark() bool { return r.Mask != 0 || r.Mark != 0 }

// String renders r in iptables syntax.
func (r *Rule) String() string {
	var b strings.Builder
	if r.InIface != "" {
		fmt.Fprintf(&b, " -i %s", r.InIface)
	}
	addr := func(flag string, not bool, p netip.Prefix) {
		if !p.IsValid() {
			return
		}
		if not {
			b.WriteString(" !")
		}
		fmt.Fprintf(&b, " %s %v", flag, p)
	}
	addr("-s", r.NotSrc, r.Src)
	addr("-d", r.NotDst, r.Dst)
	switch r.Proto {
	case 0:
	case 6:
		b.WriteString(" -p tcp")
	case 17:
		b.WriteString(" -p udp")
	case 132:
		b.WriteString(" -p sctp")
	default:
		fmt.Fprintf(&b, " -p %d", r.Proto)
	}
	ports := func(flag string, rs []PortRange) {
		if rs == nil {
			return
		}
		s := make([]string, len(rs))
		for i, p := range rs {
			s[i] = p.String()
		}
		fmt.Fprintf(&b, " -m multiport --%s %s", flag, strings.Join(s, ","))
	}
	ports("sports", r.SPorts)
	ports("dports", r.DPorts)
	switch {
	case r.Stop:
		b.WriteString(" -j ACCEPT")
	case r.Mask == 0xffffffff:
		fmt.Fprintf(&b, " -j MARK --set-mark %#x", r.Mark)
	default:
		fmt.Fprintf(&b, " -j MARK --set-xmark %#x/%#x", r.Mark, r.Mask)
	}
	if r.Family == 6 {
		return "ip6tables" + b.String()
	}
	return strings.TrimPrefix(b.String(), " ")
}

// Packet is what a Classifier looks at.
type Packet struct {
	Proto            uint8
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	// HasPorts is false for a packet without transport ports (a fragment
	// that is not the first).
	HasPorts bool
	// InIface is the name of the interface it came in on.
	InIface string
}

// Classifier evaluates mark rules in order. A nil or empty Classifier
// marks nothing. It is immutable and safe for concurrent use.
type Classifier struct {
	rules []Rule
}

// NewClassifier returns a classifier over a copy of rules, which are
// normalized (IPv4-mapped prefixes become IPv4, host bits cleared).
func NewClassifier(rules []Rule) *Classifier {
	c := &Classifier{rules: make([]Rule, len(rules))}
	for i, r := range rules {
		r.Src, r.Dst = normPrefix(r.Src), normPrefix(r.Dst)
		c.rules[i] = r
	}
	return c
}

func normPrefix(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return p
	}
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a, bits).Masked()
}

// Rules returns the classifier's rules (do not modify them).
func (c *Classifier) Rules() []Rule {
	if c == nil {
		return nil
	}
	return c.rules
}

// Len returns the number of rules.
func (c *Classifier) Len() int {
	if c == nil {
		return 0
	}
	return len(c.rules)
}

// Classify returns the mark p gets from the rules, starting from mark 0.
// It does not allocate.
func (c *Classifier) Classify(p *Packet) uint32 {
	if c == nil {
		return 0
	}
	var mark uint32
	for i := range c.rules {
		r := &c.rules[i]
		if !r.matches(p) {
			continue
		}
		if r.Stop {
			break
		}
		mark = (mark &^ r.Mask) ^ r.Mark
	}
	return mark
}

func (r *Rule) matches(p *Packet) bool {
	switch r.Family {
	case 4:
		if !p.Dst.Is4() {
			return false
		}
	case 6:
		if p.Dst.Is4() {
			return false
		}
	}
	if r.Proto != 0 && r.Proto != p.Proto {
		return false
	}
	if r.Dst.IsValid() && r.Dst.Contains(p.Dst) == r.NotDst {
		return false
	}
	if r.Src.IsValid() && r.Src.Contains(p.Src) == r.NotSrc {
		return false
	}
	if r.DPorts != nil && (!p.HasPorts || !inRanges(r.DPorts, p.DstPort)) {
		return false
	}
	if r.SPorts != nil && (!p.HasPorts || !inRanges(r.SPorts, p.SrcPort)) {
		return false
	}
	if r.InIface != "" && !ifaceMatches(r.InIface, p.InIface) {
		return false
	}
	return true
}

func inRanges(rs []PortRange, port uint16) bool {
	for _, r := range rs {
		if port >= r.Lo && port <= r.Hi {
			return true
		}
	}
	return false
}

// ifaceMatches is iptables' interface match: a trailing "+" matches every
// name with that prefix.
func ifaceMatches(pattern, name string) bool {
	if strings.HasSuffix(pattern, "+") {
		return strings.HasPrefix(name, pattern[:len(pattern)-1])
	}
	return pattern == name
}

// Destinations returns, for each rule that can give a packet one of
// marks, the destinations it covers: what the data path must take from
// the host for the firewall-mark services with those marks. A rule whose
// effect depends on earlier rules (it changes only some bits, or it
// clears marks) is included whenever marks is not empty, since the final
// mark cannot be known from the rule alone.
func (c *Classifier) Destinations(marks []uint32) []Destination {
	if c == nil || len(marks) == 0 {
		return nil
	}
	var out []Destination
	for i := range c.rules {
		r := &c.rules[i]
		if r.Stop || !r.SetsMark() {
			continue
		}
		if r.Mask == 0xffffffff && !contains(marks, r.Mark) {
			continue
		}
		dst := r.Dst
		if !dst.IsValid() || r.NotDst {
			// Any destination: every local address, per family.
			if r.Family != 6 {
				out = appendDest(out, netip.PrefixFrom(netip.IPv4Unspecified(), 0), r)
			}
			if r.Family != 4 {
				out = appendDest(out, netip.PrefixFrom(netip.IPv6Unspecified(), 0), r)
			}
			continue
		}
		out = appendDest(out, dst, r)
	}
	return out
}

func appendDest(out []Destination, p netip.Prefix, r *Rule) []Destination {
	if r.DPorts == nil {
		return append(out, Destination{Addr: p, Proto: r.Proto})
	}
	for _, pr := range r.DPorts {
		out = append(out, Destination{Addr: p, Proto: r.Proto, Ports: pr})
	}
	return out
}

func contains(ms []uint32, m uint32) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

// Destination is a destination network, protocol (0: all) and port range
// (zero: all ports) that a mark rule covers.
type Destination struct {
	Addr  netip.Prefix
	Proto uint8
	Ports PortRange
}
