package hostnet

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"

	"golvs/internal/fwmark"
)

// Untranslated is a rule of the host's ruleset that sets a mark (or ends
// the marking early) but that GoLVS cannot evaluate: packets it would
// mark are not marked by GoLVS. The daemon reports each one.
type Untranslated struct {
	Origin string // "table ip mangle chain PREROUTING handle 4"
	Reason string
}

// MarkRules reads the rules that mark incoming packets from the host's
// nftables ruleset (where iptables-nft keeps iptables rules too): the
// rules of every base chain on the prerouting hook of the ip, ip6 and
// inet families, in the order of the chains' priorities and then of the
// rules, translated for fwmark.Classifier. Rules that neither set the
// mark nor stop the chain are skipped; rules that do but use matches or
// statements GoLVS cannot evaluate are returned as Untranslated.
func (h *Host) MarkRules() ([]fwmark.Rule, []Untranslated, error) {
	c, err := h.nftConn()
	if err != nil {
		return nil, nil, err
	}
	chains, err := c.ListChains()
	if err != nil {
		return nil, nil, fmt.Errorf("hostnet: list nftables chains: %w", err)
	}
	var base []*nftables.Chain
	for _, ch := range chains {
		if ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookPrerouting || ch.Table == nil {
			continue
		}
		switch ch.Table.Family {
		case nftables.TableFamilyIPv4, nftables.TableFamilyIPv6, nftables.TableFamilyINet:
			base = append(base, ch)
		}
	}
	prio := func(ch *nftables.Chain) int32 {
		if ch.Priority == nil {
			return 0
		}
		return int32(*ch.Priority)
	}
	slices.SortStableFunc(base, func(a, b *nftables.Chain) int { return cmp.Compare(prio(a), prio(b)) })
	var rules []fwmark.Rule
	var bad []Untranslated
	sets := map[string][]nftables.SetElement{}
	for _, ch := range base {
		rs, err := c.GetRules(ch.Table, ch)
		if err != nil {
			return nil, nil, fmt.Errorf("hostnet: list rules of %s: %w", chainName(ch), err)
		}
		for _, r := range rs {
			origin := fmt.Sprintf("%s handle %d", chainName(ch), r.Handle)
			elems := func(name string) ([]nftables.SetElement, error) {
				key := familyName(ch.Table.Family) + " " + ch.Table.Name + " " + name
				if e, ok := sets[key]; ok {
					return e, nil
				}
				s, err := c.GetSetByName(ch.Table, name)
				if err != nil {
					return nil, err
				}
				e, err := c.GetSetElements(s)
				if err != nil {
					return nil, err
				}
				sets[key] = e
				return e, nil
			}
			fr, ok, reason := translateRule(ch.Table.Family, r.Exprs, elems)
			if reason != "" {
				bad = append(bad, Untranslated{Origin: origin, Reason: reason})
				continue
			}
			if ok {
				fr.Origin = origin
				rules = append(rules, fr)
			}
		}
	}
	return rules, bad, nil
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyINet:
		return "inet"
	}
	return fmt.Sprint(f)
}

func chainName(ch *nftables.Chain) string {
	return fmt.Sprintf("table %s %s chain %s", familyName(ch.Table.Family), ch.Table.Name, ch.Name)
}

// regKind is what a register holds while a rule is translated.
type regKind uint8

const (
	regNone regKind = iota
	regL4Proto
	regNFProto
	regSrc
	regDst
	regSPort
	regDPort
	regIIF
	regMark  // the packet's mark, maybe through a bitwise
	regValue // an immediate value
)

type reg struct {
	kind regKind
	// fam is the address family of regSrc/regDst (4 or 6).
	fam uint8
	// mask is a bitwise mask applied to an address (nil: none), or to
	// the mark.
	mask []byte
	xor  []byte
	val  []byte
	// n is the number of address bytes loaded: nft loads only the
	// prefix's bytes for `ip daddr 198.18.1.0/24` (3).
	n int
}

// translateRule turns one rule's expressions into a fwmark.Rule. ok is
// false for a rule that neither marks nor stops (nothing to evaluate);
// reason is non-empty for one that does but cannot be translated.
func translateRule(tf nftables.TableFamily, exprs []expr.Any, elems func(string) ([]nftables.SetElement, error)) (r fwmark.Rule, ok bool, reason string) {
	switch tf {
	case nftables.TableFamilyIPv4:
		r.Family = 4
	case nftables.TableFamilyIPv6:
		r.Family = 6
	}
	regs := map[uint32]*reg{}
	var problems []string
	fail := func(f string, args ...any) { problems = append(problems, fmt.Sprintf(f, args...)) }
	marks, stops := false, false
	famOf := func() uint8 {
		if r.Family != 0 {
			return r.Family
		}
		return 4
	}
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Counter, *expr.Log:
			// Statements without effect on the mark.
		case *expr.Meta:
			if e.SourceRegister {
				if e.Key != expr.MetaKeyMARK {
					continue // sets something other than the mark
				}
				src := regs[e.Register]
				switch {
				case src == nil:
					fail("mark set from an unknown value")
				case src.kind == regValue && len(src.val) >= 4:
					r.Mark, r.Mask = nativeU32(src.val), 0xffffffff
				case src.kind == regMark:
					// meta mark set mark and M xor X: (old & M) ^ X.
					m, x := uint32(0xffffffff), uint32(0)
					if src.mask != nil {
						m = nativeU32(src.mask)
					}
					if src.xor != nil {
						x = nativeU32(src.xor)
					}
					r.Mark, r.Mask = x, ^m
				default:
					fail("mark set from a packet field")
				}
				marks = true
				continue
			}
			switch e.Key {
			case expr.MetaKeyL4PROTO:
				regs[e.Register] = &reg{kind: regL4Proto}
			case expr.MetaKeyNFPROTO:
				regs[e.Register] = &reg{kind: regNFProto}
			case expr.MetaKeyIIFNAME:
				regs[e.Register] = &reg{kind: regIIF}
			case expr.MetaKeyMARK:
				regs[e.Register] = &reg{kind: regMark}
			default:
				fail("meta key %d", e.Key)
				regs[e.Register] = &reg{}
			}
		case *expr.Payload:
			if e.OperationType != expr.PayloadLoad {
				fail("payload write")
				continue
			}
			regs[e.DestRegister] = payloadReg(e, famOf(), r.Family == 0)
			if regs[e.DestRegister].kind == regNone {
				fail("payload %d@%d+%d", e.Len, e.Base, e.Offset)
			}
		case *expr.Bitwise:
			src := regs[e.SourceRegister]
			if src == nil {
				fail("bitwise on an unknown value")
				continue
			}
			n := *src
			n.mask, n.xor = e.Mask, e.Xor
			regs[e.DestRegister] = &n
		case *expr.Immediate:
			regs[e.Register] = &reg{kind: regValue, val: e.Data}
		case *expr.Cmp:
			src := regs[e.Register]
			if src == nil {
				fail("compare of an unknown value")
				continue
			}
			if err := applyCmp(&r, src, e); err != "" {
				fail("%s", err)
			}
		case *expr.Range:
			src := regs[e.Register]
			if src == nil || (src.kind != regSPort && src.kind != regDPort) || e.Op != expr.CmpOpEq {
				fail("range on something other than a port")
				continue
			}
			pr := fwmark.PortRange{Lo: binary.BigEndian.Uint16(pad2(e.FromData)), Hi: binary.BigEndian.Uint16(pad2(e.ToData))}
			setPorts(&r, src.kind, []fwmark.PortRange{pr})
		case *expr.Lookup:
			src := regs[e.SourceRegister]
			if src == nil || e.Invert || e.IsDestRegSet {
				fail("set lookup")
				continue
			}
			el, err := elems(e.SetName)
			if err != nil {
				fail("set %s: %v", e.SetName, err)
				continue
			}
			if msg := applyLookup(&r, src, el); msg != "" {
				fail("set %s: %s", e.SetName, msg)
			}
		case *expr.Match:
			if msg := applyMatch(&r, e); msg != "" {
				fail("%s", msg)
			}
		case *expr.Target:
			if e.Name != "MARK" || e.Rev != 2 {
				if e.Name == "MARK" || e.Name == "CONNMARK" {
					fail("target %s revision %d", e.Name, e.Rev)
					marks = true
				}
				continue
			}
			u, isU := e.Info.(*xt.Unknown)
			if !isU || len(*u) < 8 {
				fail("target MARK: short info")
				marks = true
				continue
			}
			// struct xt_mark_tginfo2 { __u32 mark, mask; } in host order.
			r.Mark, r.Mask = nativeU32((*u)[0:4]), nativeU32((*u)[4:8])
			marks = true
		case *expr.Verdict:
			switch e.Kind {
			case expr.VerdictAccept, expr.VerdictReturn:
				stops = true
			case expr.VerdictDrop:
				// A dropped packet never reaches the service;
				// GoLVS's data path does not filter.
				fail("drop verdict (GoLVS does not filter service traffic; see docs/architecture.md)")
				stops = true
			default:
				fail("verdict %d (jumps to other chains are not followed)", e.Kind)
				stops = true
			}
		default:
			fail("expression %T", e)
		}
	}
	if !marks && !stops {
		return r, false, ""
	}
	if len(problems) > 0 {
		return r, false, strings.Join(problems, "; ")
	}
	if marks && stops {
		// The mark is set, then evaluation ends: mark, then a stop
		// rule with the same matches.
		return r, true, "sets the mark and ends the chain in one rule"
	}
	r.Stop = stops && !marks
	return r, true, ""
}

// payloadReg says what a payload load puts in its register.
func payloadReg(e *expr.Payload, fam uint8, inet bool) *reg {
	switch e.Base {
	case expr.PayloadBaseNetworkHeader:
		n := int(e.Len)
		if fam == 4 || inet {
			switch {
			case e.Offset == 9 && e.Len == 1:
				return &reg{kind: regL4Proto}
			case e.Offset == 12 && e.Len >= 1 && e.Len <= 4:
				return &reg{kind: regSrc, fam: 4, n: n}
			case e.Offset == 16 && e.Len >= 1 && e.Len <= 4:
				return &reg{kind: regDst, fam: 4, n: n}
			}
		}
		if fam == 6 || inet {
			switch {
			case e.Offset == 6 && e.Len == 1:
				return &reg{kind: regL4Proto}
			case e.Offset == 8 && e.Len >= 1 && e.Len <= 16:
				return &reg{kind: regSrc, fam: 6, n: n}
			case e.Offset == 24 && e.Len >= 1 && e.Len <= 16:
				return &reg{kind: regDst, fam: 6, n: n}
			}
		}
	case expr.PayloadBaseTransportHeader:
		switch {
		case e.Offset == 0 && e.Len == 2:
			return &reg{kind: regSPort}
		case e.Offset == 2 && e.Len == 2:
			return &reg{kind: regDPort}
		}
	}
	return &reg{}
}

// applyCmp narrows r by one comparison.
func applyCmp(r *fwmark.Rule, src *reg, e *expr.Cmp) string {
	switch src.kind {
	case regL4Proto:
		if e.Op != expr.CmpOpEq || len(e.Data) != 1 {
			return "protocol comparison other than =="
		}
		switch e.Data[0] {
		case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP:
			r.Proto = e.Data[0]
			return ""
		}
		// Not a protocol a virtual service has: nothing it marks
		// matters to GoLVS, and an impossible match keeps it out.
		r.Proto = 255
		return ""
	case regNFProto:
		if e.Op != expr.CmpOpEq || len(e.Data) != 1 {
			return "family comparison other than =="
		}
		switch e.Data[0] {
		case unix.NFPROTO_IPV4:
			r.Family = 4
		case unix.NFPROTO_IPV6:
			r.Family = 6
		default:
			return "unknown family"
		}
		return ""
	case regSrc, regDst:
		full := 4
		if src.fam == 6 {
			full = 16
		}
		if len(e.Data) != src.n {
			return "address of bad length"
		}
		a, _ := netip.AddrFromSlice(append(slices.Clone(e.Data), make([]byte, full-src.n)...))
		bits := src.n * 8
		if src.mask != nil {
			n, ok := prefixLen(src.mask)
			if !ok {
				return "address mask that is not a prefix"
			}
			bits = n
		}
		var not bool
		switch e.Op {
		case expr.CmpOpEq:
		case expr.CmpOpNeq:
			not = true
		default:
			return "address comparison other than == and !="
		}
		p := netip.PrefixFrom(a, bits).Masked()
		if r.Family == 0 {
			r.Family = src.fam
		}
		if src.kind == regSrc {
			r.Src, r.NotSrc = p, not
		} else {
			r.Dst, r.NotDst = p, not
		}
		return ""
	case regSPort, regDPort:
		if len(e.Data) != 2 {
			return "port of bad length"
		}
		p := binary.BigEndian.Uint16(e.Data)
		var pr fwmark.PortRange
		switch e.Op {
		case expr.CmpOpEq:
			pr = fwmark.PortRange{Lo: p, Hi: p}
		case expr.CmpOpGte:
			pr = fwmark.PortRange{Lo: p, Hi: 65535}
		case expr.CmpOpLte:
			pr = fwmark.PortRange{Lo: 0, Hi: p}
		default:
			return "port comparison other than ==, >= and <="
		}
		cur := r.DPorts
		if src.kind == regSPort {
			cur = r.SPorts
		}
		if len(cur) == 1 {
			// `>= a` then `<= b`: intersect.
			pr.Lo, pr.Hi = max(pr.Lo, cur[0].Lo), min(pr.Hi, cur[0].Hi)
		}
		setPorts(r, src.kind, []fwmark.PortRange{pr})
		return ""
	case regIIF:
		if e.Op != expr.CmpOpEq {
			return "interface comparison other than =="
		}
		name := string(bytes.TrimRight(e.Data, "\x00"))
		if len(e.Data) < unix.IFNAMSIZ && !bytes.HasSuffix(e.Data, []byte{0}) {
			name += "+" // iptables-nft's `-i eth+` compares a prefix
		}
		r.InIface = name
		return ""
	case regMark:
		return "match on the mark"
	}
	return "comparison of an untranslated field"
}

func setPorts(r *fwmark.Rule, k regKind, prs []fwmark.PortRange) {
	if k == regSPort {
		r.SPorts = prs
	} else {
		r.DPorts = prs
	}
}

// applyLookup narrows r by a set of ports or addresses.
func applyLookup(r *fwmark.Rule, src *reg, el []nftables.SetElement) string {
	slices.SortFunc(el, func(a, b nftables.SetElement) int { return bytes.Compare(a.Key, b.Key) })
	switch src.kind {
	case regSPort, regDPort:
		var prs []fwmark.PortRange
		interval := slices.ContainsFunc(el, func(e nftables.SetElement) bool { return e.IntervalEnd })
		for i := 0; i < len(el); i++ {
			e := el[i]
			if len(e.Key) != 2 || e.IntervalEnd {
				continue
			}
			lo := binary.BigEndian.Uint16(e.Key)
			hi := lo
			if len(e.KeyEnd) == 2 {
				hi = binary.BigEndian.Uint16(e.KeyEnd)
			} else if interval {
				// Interval sets keep [lo, end) as a start element
				// and an end element holding end.
				hi = 65535
				for j := range el {
					if el[j].IntervalEnd && len(el[j].Key) == 2 && binary.BigEndian.Uint16(el[j].Key) > lo {
						hi = binary.BigEndian.Uint16(el[j].Key) - 1
						break
					}
				}
			}
			prs = append(prs, fwmark.PortRange{Lo: lo, Hi: hi})
		}
		if len(prs) == 0 {
			return "empty port set"
		}
		setPorts(r, src.kind, prs)
		return ""
	}
	return "set of something other than ports"
}

// applyMatch translates an xtables match of iptables-nft.
func applyMatch(r *fwmark.Rule, m *expr.Match) string {
	switch m.Name {
	case "comment":
		return ""
	case "multiport":
		u, ok := m.Info.(*xt.Unknown)
		if !ok {
			return "multiport: undecoded"
		}
		b := []byte(*u)
		// struct xt_multiport (rev 0): flags u8, count u8, ports[15]
		// u16; rev 1 (xt_multiport_v1) adds pflags[15] u8 (1: the
		// port starts a range ending at the next) and invert u8.
		const maxPorts = 15 // XT_MULTI_PORTS
		if len(b) < 2+2*maxPorts || (m.Rev == 1 && len(b) < 2+3*maxPorts+1) {
			return "multiport: short info"
		}
		flags, count := b[0], int(b[1])
		if count > maxPorts {
			return "multiport: bad count"
		}
		port := func(i int) uint16 { return nativeU16(b[2+2*i:]) }
		var prs []fwmark.PortRange
		for i := 0; i < count; i++ {
			p := port(i)
			if m.Rev == 1 && b[2+2*maxPorts+i] != 0 && i+1 < count {
				prs = append(prs, fwmark.PortRange{Lo: p, Hi: port(i + 1)})
				i++
				continue
			}
			prs = append(prs, fwmark.PortRange{Lo: p, Hi: p})
		}
		if m.Rev == 1 && b[2+3*maxPorts] != 0 {
			return "multiport: inverted"
		}
		switch flags {
		case 0: // XT_MULTIPORT_SOURCE
			r.SPorts = prs
		case 1: // XT_MULTIPORT_DESTINATION
			r.DPorts = prs
		default:
			return "multiport --ports (either direction)"
		}
		return ""
	case "tcp", "udp":
		var sp, dp [2]uint16
		switch i := m.Info.(type) {
		case *xt.Tcp:
			if i.InvFlags != 0 || i.FlagsMask != 0 || i.Option != 0 {
				return "tcp match with flags, options or negation"
			}
			sp, dp = i.SrcPorts, i.DstPorts
		case *xt.Udp:
			if i.InvFlags != 0 {
				return "udp match with negation"
			}
			sp, dp = i.SrcPorts, i.DstPorts
		default:
			return m.Name + ": undecoded"
		}
		if sp != [2]uint16{0, 0xffff} {
			r.SPorts = []fwmark.PortRange{{Lo: sp[0], Hi: sp[1]}}
		}
		if dp != [2]uint16{0, 0xffff} {
			r.DPorts = []fwmark.PortRange{{Lo: dp[0], Hi: dp[1]}}
		}
		return ""
	}
	return "match " + m.Name
}

func prefixLen(mask []byte) (int, bool) {
	n := 0
	for i, b := range mask {
		if b == 0xff {
			n += 8
			continue
		}
		for b&0x80 != 0 {
			n++
			b <<= 1
		}
		if b != 0 {
			return 0, false
		}
		for _, x := range mask[i+1:] {
			if x != 0 {
				return 0, false
			}
		}
		break
	}
	return n, true
}

func pad2(b []byte) []byte {
	if len(b) >= 2 {
		return b
	}
	return append(make([]byte, 2-len(b)), b...)
}

// nativeU32 reads a host-order uint32 (registers and xtables info hold
// values in host order).
func nativeU32(b []byte) uint32 { return binary.NativeEndian.Uint32(b) }

func nativeU16(b []byte) uint16 { return binary.NativeEndian.Uint16(b) }

// WatchNftables subscribes to the changes of the host's nftables ruleset
// (iptables-nft's too): the channel gets a value after each transaction
// (coalesced: one pending value at most). stop ends the subscription and
// waits for its goroutine; the channel is then closed.
func (h *Host) WatchNftables() (changes <-chan struct{}, stop func(), err error) {
	c, err := h.nftConn()
	if err != nil {
		return nil, nil, err
	}
	// A buffer for the library's receiving goroutine, which blocks on a
	// full channel; 16 transactions in flight is far more than a
	// director's ruleset sees at once.
	mon := nftables.NewMonitor(nftables.WithMonitorEventBuffer(16))
	gen, err := c.AddGenerationalMonitor(mon)
	if err != nil {
		return nil, nil, fmt.Errorf("hostnet: watch nftables: %w", err)
	}
	out := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		// Until the monitor closes its channel (after Close, or on a
		// receive error), every batch of changes is one signal.
		for range gen {
			select {
			case out <- struct{}{}:
			default:
			}
		}
	}()
	var once sync.Once
	return out, func() {
		once.Do(func() {
			mon.Close()
			<-done
		})
	}, nil
}
