package keepalived

import (
	"net/netip"
	"time"
)

// BGP defaults and limits (RFC 4271).
const (
	bgpDefaultHold = 90 * time.Second // RFC 4271 §10 suggested HoldTime
	bgpMinHold     = 3 * time.Second  // §4.2: zero or at least three seconds
	bgpMaxHold     = 65535 * time.Second
	bgpPort        = 179
	// tcpMD5MaxKey is TCP_MD5SIG_MAXKEYLEN (RFC 2385 keys in Linux).
	tcpMD5MaxKey = 80
	// asTrans is AS_TRANS (RFC 6793), reserved: not a real AS.
	asTrans = 23456
)

// bgp parses the GoLVS extension block:
//
//	bgp {
//	    router_id 198.18.0.1
//	    local_as 65001
//	    hold_time 90            # default for neighbors
//	    keepalive 30            # default for neighbors
//	    neighbor 198.18.0.254 {
//	        remote_as 65000
//	        hold_time 9
//	        keepalive 3
//	        password "secret"
//	        next_hop_self
//	        port 179
//	        passive
//	        ebgp_multihop 2
//	        source_address 198.18.0.1
//	    }
//	    announce 198.18.10.0/24 198.18.11.0/24
//	}
//
// It is parsed and validated only: the speaker is issue 11.
func (p *parser) bgp(n *node) {
	if !p.needBlock(n) {
		return
	}
	if len(n.words) > 1 {
		p.errorf(n, "unexpected parameter %q", n.words[1])
	}
	if p.cfg.BGP != nil {
		p.errorf(n, "bgp is already defined at %s", p.cfg.BGP.Pos)
		return
	}
	b := &BGP{Pos: n.pos}
	var hold, keep *time.Duration
	var neighbors []*node
	announced := map[netip.Prefix]bool{}
	for _, k := range n.kids {
		if k.kw() != "neighbor" && k.kw() != "announce" && p.noBlock(k) {
			continue
		}
		switch k.kw() {
		case "router_id":
			if a, ok := p.addrArg(k, 1); ok {
				if !a.Is4() || a.IsUnspecified() {
					p.errorf(k, "router_id must be a non-zero IPv4 address")
					continue
				}
				b.RouterID = a
			}
		case "local_as":
			if v, ok := p.asArg(k); ok {
				b.LocalAS = v
			}
		case "hold_time":
			if v, ok := p.holdArg(k); ok {
				hold = &v
			}
		case "keepalive":
			if v, ok := p.timerArg(k, 1, 0, bgpMaxHold); ok {
				keep = &v
			}
		case "neighbor":
			neighbors = append(neighbors, k)
		case "announce":
			var words []string
			if k.block {
				for _, l := range p.valueLines(k) {
					words = append(words, l.words...)
				}
			} else {
				words = k.words[1:]
			}
			if len(words) == 0 {
				p.errorf(k, "missing prefix")
			}
			for _, w := range words {
				pf, err := netip.ParsePrefix(w)
				if err != nil {
					a, err2 := netip.ParseAddr(w)
					if err2 != nil {
						p.errorf(k, "invalid prefix %q", w)
						continue
					}
					pf = netip.PrefixFrom(a, a.BitLen())
				}
				if pf.Masked() != pf {
					p.errorf(k, "prefix %s has host bits set (did you mean %s?)", pf, pf.Masked())
					continue
				}
				if announced[pf] {
					p.warnf(k, "prefix %s is announced twice", pf)
					continue
				}
				announced[pf] = true
				b.Announce = append(b.Announce, pf)
			}
		default:
			p.unknown(k)
		}
	}
	if !b.RouterID.IsValid() {
		p.errorf(n, "bgp needs a router_id")
	}
	if b.LocalAS == 0 {
		p.errorf(n, "bgp needs a local_as")
	}
	seen := map[netip.Addr]Pos{}
	for _, k := range neighbors {
		nb, ok := p.bgpNeighbor(k, hold, keep)
		if !ok {
			continue
		}
		if pos, dup := seen[nb.Addr]; dup {
			p.errorf(k, "neighbor %s is already defined at %s", nb.Addr, pos)
			continue
		}
		seen[nb.Addr] = nb.Pos
		b.Neighbors = append(b.Neighbors, nb)
	}
	if len(neighbors) == 0 {
		p.errorf(n, "bgp needs at least one neighbor")
	}
	if len(b.Announce) == 0 {
		p.warnf(n, "bgp announces nothing")
	}
	p.cfg.BGP = b
}

func (p *parser) asArg(k *node) (uint32, bool) {
	v, ok := p.uintArg(k, 1, 1, 1<<32-1)
	if ok && v == asTrans {
		p.errorf(k, "AS %d is AS_TRANS (RFC 6793), not a usable AS number", v)
		return 0, false
	}
	return uint32(v), ok
}

func (p *parser) holdArg(k *node) (time.Duration, bool) {
	v, ok := p.timerArg(k, 1, 0, bgpMaxHold)
	if ok && v != 0 && v < bgpMinHold {
		p.errorf(k, "hold_time must be 0 or at least 3 seconds (RFC 4271)")
		return 0, false
	}
	return v.Truncate(time.Second), ok
}

func (p *parser) bgpNeighbor(n *node, hold, keep *time.Duration) (BGPNeighbor, bool) {
	nb := BGPNeighbor{Pos: n.pos, Port: bgpPort, HoldTime: bgpDefaultHold}
	a, ok := p.addrArg(n, 1)
	if !ok || !p.needBlock(n) {
		return nb, false
	}
	nb.Addr = a
	if hold != nil {
		nb.HoldTime = *hold
	}
	keepSet := keep
	for _, k := range n.kids {
		if p.noBlock(k) {
			continue
		}
		switch k.kw() {
		case "remote_as":
			if v, ok := p.asArg(k); ok {
				nb.RemoteAS = v
			}
		case "hold_time":
			if v, ok := p.holdArg(k); ok {
				nb.HoldTime = v
			}
		case "keepalive":
			if v, ok := p.timerArg(k, 1, 0, bgpMaxHold); ok {
				keepSet = &v
			}
		case "password":
			if s, ok := p.str(k); ok {
				if len(s) > tcpMD5MaxKey {
					p.errorf(k, "password longer than %d bytes (TCP MD5 key limit)", tcpMD5MaxKey)
					continue
				}
				nb.Password = s
			}
		case "next_hop_self":
			nb.NextHopSelf, _ = p.optBool(k)
		case "port":
			if v, ok := p.uintArg(k, 1, 1, 65535); ok {
				nb.Port = uint16(v)
			}
		case "passive":
			nb.Passive, _ = p.optBool(k)
		case "ebgp_multihop":
			nb.EBGPMultihop = 255 // the largest TTL
			if len(k.words) > 1 {
				if v, ok := p.uintArg(k, 1, 1, 255); ok {
					nb.EBGPMultihop = int(v)
				}
			}
		case "source_address":
			if a, ok := p.addrArg(k, 1); ok {
				nb.SourceAddr = a
			}
		default:
			p.unknown(k)
		}
	}
	ok = true
	if nb.RemoteAS == 0 {
		p.errorf(n, "neighbor %s needs a remote_as", nb.Addr)
		ok = false
	}
	// RFC 4271 §10: KeepaliveTime one third of the HoldTime.
	nb.Keepalive = (nb.HoldTime / 3).Truncate(time.Second)
	if keepSet != nil {
		nb.Keepalive = *keepSet
	}
	if nb.HoldTime > 0 && nb.Keepalive >= nb.HoldTime {
		p.errorf(n, "neighbor %s: keepalive %v must be less than hold_time %v", nb.Addr, nb.Keepalive, nb.HoldTime)
		ok = false
	}
	if nb.SourceAddr.IsValid() && nb.SourceAddr.Is4() != nb.Addr.Is4() {
		p.errorf(n, "neighbor %s: source_address %s is of another family", nb.Addr, nb.SourceAddr)
		ok = false
	}
	return nb, ok
}
