package keepalived

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golvs/internal/service"
)

type instState struct {
	n          *node
	in         VRRPInstance
	version    int // 0 = not given
	advert     *node
	strict     Tristate
	accept     Tristate
	garp       garpOverride
	lowerNoAdv Tristate
	higherSend Tristate
	skipCheck  Tristate
	tscripts   []trackRef
	tfiles     []trackRef
	authN      *node
}

// trackRef is a track_script or track_file entry before its target's
// weight is known.
type trackRef struct {
	n         *node
	name      string
	weight    int
	weightSet bool
	reverse   bool
}

type garpOverride struct {
	masterDelay, lowerPrioDelay, masterRefresh       *time.Duration
	masterRepeat, lowerPrioRepeat, masterRefreshRept *int
}

type sgState struct {
	n        *node
	sg       SyncGroup
	tscripts []trackRef
	tfiles   []trackRef
}

// vrrpScript parses vrrp_script NAME { script; interval; timeout; weight
// [reverse]; rise; fall; user; init_fail }.
func (p *parser) vrrpScript(n *node) {
	name, ok := p.arg(n, 1)
	if !ok || !p.needBlock(n) {
		return
	}
	if n.kw() == "vrrp_track_script" {
		p.deprecated(n, "vrrp_script")
	}
	vs := VRRPScript{Pos: n.pos, Name: name, Interval: time.Second, Rise: 1, Fall: 1}
	var haveScript, timeoutSet bool
	for _, k := range n.kids {
		if p.noBlock(k) {
			continue
		}
		switch k.kw() {
		case "script":
			if s, ok := p.script(k); ok {
				vs.Script, haveScript = *s, true
				vs.Script.User, vs.Script.Group = "", ""
				if len(k.words) > 2 {
					p.warnf(k, "use the user keyword to set the script's user; extra parameters ignored")
				}
			}
		case "interval":
			// keepalived reads whole seconds here, at least 1.
			if v, ok := p.timerArg(k, 1, time.Second, 0); ok {
				vs.Interval = v
			}
		case "timeout":
			if v, ok := p.timerArg(k, 1, time.Second, 0); ok {
				vs.Timeout, timeoutSet = v, true
			}
		case "weight":
			// -253..253: a weight can move a priority across its whole
			// 1..254 range but not reach 0 or 255.
			if v, ok := p.intArg(k, 1, -253, 253); ok {
				vs.Weight = int(v)
			}
			if len(k.words) > 2 {
				if k.words[2] == "reverse" {
					vs.Reverse = true
				} else {
					p.errorf(k, "unknown parameter %q", k.words[2])
				}
			}
		case "rise", "fall":
			if v, ok := p.uintArg(k, 1, 1, math.MaxInt32); ok {
				if k.kw() == "rise" {
					vs.Rise = int(v)
				} else {
					vs.Fall = int(v)
				}
			}
		case "user":
			if p.nargs(k, 1, 2) {
				vs.Script.User = k.words[1]
				if len(k.words) > 2 {
					vs.Script.Group = k.words[2]
				}
			}
		case "init_fail":
			vs.InitFail = true
		default:
			p.unknown(k)
		}
	}
	if !timeoutSet {
		// keepalived's timeout 0: a run may last the whole interval.
		vs.Timeout = vs.Interval
	}
	if !haveScript {
		p.warnf(n, "no script set for vrrp_script %s - removing", name)
		return
	}
	for _, o := range p.cfg.VRRPScripts {
		if o.Name == name {
			p.errorf(n, "vrrp_script %s is already defined at %s", name, o.Pos)
			return
		}
	}
	p.cfg.VRRPScripts = append(p.cfg.VRRPScripts, vs)
}

// trackEntries parses the lines of track_script / track_file / track_interface:
// NAME [weight N [reverse|noreverse|no_reverse]].
func (p *parser) trackEntries(n *node, min, max int64) []trackRef {
	var out []trackRef
	for _, k := range p.valueLines(n) {
		t := trackRef{n: k, name: k.words[0]}
		for i := 1; i < len(k.words); i++ {
			switch k.words[i] {
			case "weight":
				v, ok := p.intArg(k, i+1, min, max)
				if !ok {
					i = len(k.words)
					t.name = ""
					continue
				}
				t.weight, t.weightSet = int(v), true
				i++
			case "reverse":
				t.reverse = true
			case "noreverse", "no_reverse":
				t.reverse = false
			default:
				p.errorf(k, "unknown parameter %q", k.words[i])
				t.name = ""
			}
		}
		if t.name != "" {
			out = append(out, t)
		}
	}
	return out
}

func trackInterfaces(refs []trackRef) []TrackInterface {
	var out []TrackInterface
	for _, r := range refs {
		out = append(out, TrackInterface{Name: r.name, Weight: r.weight, Reverse: r.reverse})
	}
	return out
}

// notify parses the notify keywords shared by instances and sync groups;
// it reports false for other keywords.
func (p *parser) notify(nt *Notify, k *node) bool {
	var dst **Script
	switch k.kw() {
	case "notify_master":
		dst = &nt.Master
	case "notify_backup":
		dst = &nt.Backup
	case "notify_fault":
		dst = &nt.Fault
	case "notify_stop":
		dst = &nt.Stop
	case "notify":
		dst = &nt.Any
	case "notify_master_rx_lower_pri":
		dst = &nt.MasterRxLowerPri
	case "notify_deleted":
		nt.DeletedState = true
		if len(k.words) < 2 {
			return true
		}
		dst = &nt.Deleted
	default:
		return false
	}
	if s, ok := p.script(k); ok {
		if *dst != nil {
			p.warnf(k, "%s already specified - replacing", k.kw())
		}
		*dst = s
	}
	return true
}

var ignoredSyncGroup = map[string]bool{"track_process": true, "track_bfd": true}

// syncGroup parses vrrp_sync_group NAME { group { ... } track_* notify* ... }.
func (p *parser) syncGroup(n *node) {
	name, ok := p.arg(n, 1)
	if !ok || !p.needBlock(n) {
		return
	}
	st := &sgState{n: n, sg: SyncGroup{Pos: n.pos, Name: name}}
	for _, k := range n.kids {
		switch kw := k.kw(); kw {
		case "group":
			for _, m := range p.valueLines(k) {
				st.sg.Members = append(st.sg.Members, m.words...)
			}
		case "track_interface":
			st.sg.TrackInterfaces = trackInterfaces(p.trackEntries(k, -253, 253))
		case "track_script":
			st.tscripts = p.trackEntries(k, -253, 253)
		case "track_file":
			st.tfiles = p.trackEntries(k, -254, 254)
		case "smtp_alert":
			p.ignore(k)
			st.sg.SMTPAlert, _ = p.optBool(k)
		case "notify_priority_changes":
			st.sg.NotifyPriorityChanges, _ = p.optBool(k)
		case "sync_group_tracking_weight":
			st.sg.SyncGroupTrackingWeight = true
		case "global_tracking":
			p.deprecated(k, "track_interface, track_script and track_file on the sync group")
		default:
			if p.noBlock(k) {
				continue
			}
			if p.notify(&st.sg.Notify, k) {
				continue
			}
			if ignoredSyncGroup[kw] {
				p.ignore(k)
				continue
			}
			p.unknown(k)
		}
	}
	p.groups = append(p.groups, st)
}

var ignoredInstance = map[string]bool{
	"vrf": true, "use_vmac": true, "use_vmac_addr": true, "vmac_xmit_base": true, "use_ipvlan": true,
	"track_process": true, "track_bfd": true, "old_unicast_checksum": true, "v3_checksum_as_v2": true,
	"garp_extra_if": true, "garp_extra_if_vmac": true, "debug": true, "kernel_rx_buf_size": true,
	"auth_hmac": true, "timer_expired_backup": true, "linkbeat_use_polling": true,
	"no_virtual_ipaddress": true,
}

// vrrpInstance parses a vrrp_instance block.
func (p *parser) vrrpInstance(n *node) {
	name, ok := p.arg(n, 1)
	if !ok || !p.needBlock(n) {
		return
	}
	st := &instState{n: n}
	in := &st.in
	*in = VRRPInstance{Pos: n.pos, Name: name, State: StateBackup, Priority: 100, AdvertInt: time.Second, UnicastTTL: 255}
	for _, k := range n.kids {
		p.instanceKeyword(st, k)
	}
	p.instances = append(p.instances, st)
}

func (p *parser) instanceKeyword(st *instState, k *node) {
	in := &st.in
	kw := k.kw()
	switch kw {
	case "virtual_ipaddress", "virtual_ipaddress_excluded":
		for _, l := range p.valueLines(k) {
			if a, ok := p.ipAddress(l, true); ok {
				if kw == "virtual_ipaddress" {
					in.VIPs = append(in.VIPs, a)
				} else {
					in.ExcludedVIPs = append(in.ExcludedVIPs, a)
				}
			}
		}
		return
	case "virtual_routes":
		p.ignore(k)
		for _, l := range p.valueLines(k) {
			in.VirtualRoutes = append(in.VirtualRoutes, p.route(l))
		}
		return
	case "virtual_rules":
		p.ignore(k)
		for _, l := range p.valueLines(k) {
			in.VirtualRules = append(in.VirtualRules, Rule{Pos: l.pos, Words: l.words})
		}
		return
	case "track_interface":
		in.TrackInterfaces = trackInterfaces(p.trackEntries(k, -253, 253))
		return
	case "track_script":
		st.tscripts = p.trackEntries(k, -253, 253)
		return
	case "track_file":
		st.tfiles = p.trackEntries(k, -254, 254)
		return
	case "unicast_peer":
		for _, l := range p.valueLines(k) {
			a, err := netip.ParseAddr(l.words[0])
			if err != nil {
				p.errorf(l, "invalid unicast peer address %q", l.words[0])
				continue
			}
			peer := UnicastPeer{Addr: a.Unmap(), MinTTL: -1, MaxTTL: -1}
			for i := 1; i < len(l.words); i += 2 {
				if (l.words[i] != "min_ttl" && l.words[i] != "max_ttl") || i+1 >= len(l.words) {
					p.errorf(l, "unknown parameter %q", l.words[i])
					break
				}
				if v, ok := p.uintArg(l, i+1, 0, 255); ok {
					if l.words[i] == "min_ttl" {
						peer.MinTTL = int(v)
					} else {
						peer.MaxTTL = int(v)
					}
					in.CheckUnicastSrc = true // min/max_ttl turn on check_unicast_src
				}
			}
			in.UnicastPeers = append(in.UnicastPeers, peer)
		}
		return
	case "authentication":
		if !p.needBlock(k) {
			return
		}
		a := &Auth{}
		for _, l := range k.kids {
			if p.noBlock(l) {
				continue
			}
			switch l.kw() {
			case "auth_type":
				if s, ok := p.str(l); ok {
					if s != "PASS" && s != "AH" {
						p.errorf(l, "unknown auth_type %q: expected PASS or AH", s)
						continue
					}
					a.Type = s
				}
			case "auth_pass":
				if s, ok := p.str(l); ok {
					// The VRRPv2 authentication data field is 8 bytes.
					if len(s) > 8 {
						p.warnf(l, "truncating auth_pass to 8 characters")
						s = s[:8]
					}
					a.Pass = s
				}
			default:
				p.unknown(l)
			}
		}
		if a.Type == "" {
			p.errorf(k, "authentication needs an auth_type")
			return
		}
		in.Auth, st.authN = a, k
		return
	}
	if p.noBlock(k) {
		return
	}
	if p.notify(&in.Notify, k) {
		return
	}
	switch kw {
	case "state":
		if s, ok := p.str(k); ok {
			switch s {
			case StateMaster, StateBackup:
				in.State = s
			default:
				p.errorf(k, "unknown state %q: expected MASTER or BACKUP", s)
			}
		}
	case "interface":
		in.Interface, _ = p.str(k)
	case "virtual_router_id":
		if v, ok := p.uintArg(k, 1, 1, 255); ok {
			in.VRID = uint8(v)
		}
	case "priority":
		if v, ok := p.uintArg(k, 1, 1, 255); ok {
			in.Priority = uint8(v)
		}
	case "advert_int":
		// The v3 field is 12 bits of centiseconds: at most 40.95 s; v2
		// carries 8 bits of seconds. Checked once the version is known.
		if v, ok := p.timerArg(k, 1, 0, 255*time.Second); ok {
			in.AdvertInt, st.advert = v, k
		}
	case "version":
		if v, ok := p.uintArg(k, 1, 2, 3); ok {
			st.version = int(v)
		}
	case "native_ipv6":
		p.deprecated(k, "IPv6 virtual addresses (the family follows them)")
	case "dont_track_primary":
		in.DontTrackPrimary = true
	case "track_src_ip":
		in.TrackSrcIP = true
	case "mcast_src_ip", "unicast_src_ip", "mcast_dst_ip":
		a, ok := p.addrArg(k, 1)
		if !ok {
			return
		}
		switch kw {
		case "mcast_src_ip":
			in.McastSrcIP = a
		case "unicast_src_ip":
			in.UnicastSrcIP = a
		default:
			if !a.IsMulticast() {
				p.errorf(k, "%s is not a multicast address", a)
				return
			}
			in.McastDstIP = a
		}
	case "check_unicast_src":
		in.CheckUnicastSrc = true
	case "unicast_fault_no_peer":
		in.UnicastFaultNoPeer = true
	case "unicast_ttl":
		if v, ok := p.uintArg(k, 1, 0, 255); ok {
			in.UnicastTTL = int(v)
		}
	case "garp_master_delay", "garp_lower_prio_delay", "garp_master_refresh":
		if v, ok := p.timerArg(k, 1, 0, 86400*time.Second); ok {
			switch kw {
			case "garp_master_delay":
				st.garp.masterDelay = &v
			case "garp_lower_prio_delay":
				st.garp.lowerPrioDelay = &v
			default:
				st.garp.masterRefresh = &v
			}
		}
	case "garp_master_repeat", "garp_lower_prio_repeat", "garp_master_refresh_repeat":
		if v, ok := p.uintArg(k, 1, 0, 255); ok {
			r := int(v)
			switch kw {
			case "garp_master_repeat":
				st.garp.masterRepeat = &r
			case "garp_lower_prio_repeat":
				st.garp.lowerPrioRepeat = &r
			default:
				st.garp.masterRefreshRept = &r
			}
		}
	case "down_timer_adverts":
		if v, ok := p.uintArg(k, 1, 1, 100); ok {
			in.DownTimerAdverts = int(v)
		}
	case "lower_prio_no_advert":
		if v, ok := p.optBool(k); ok {
			st.lowerNoAdv = triOf(v)
		}
	case "higher_prio_send_advert":
		if v, ok := p.optBool(k); ok {
			st.higherSend = triOf(v)
		}
	case "skip_check_adv_addr":
		if v, ok := p.optBool(k); ok {
			st.skipCheck = triOf(v)
		}
	case "strict_mode":
		if v, ok := p.optBool(k); ok {
			st.strict = triOf(v)
		}
	case "accept":
		st.accept = True
	case "no_accept":
		st.accept = False
	case "nopreempt":
		in.Nopreempt = true
	case "preempt":
		in.Nopreempt = false
	case "preempt_delay":
		if v, ok := p.timerArg(k, 1, 0, 1000*time.Second); ok {
			in.PreemptDelay = v
		}
	case "promote_secondaries":
		in.PromoteSecondaries = true
	case "smtp_alert":
		p.ignore(k)
		in.SMTPAlert, _ = p.optBool(k)
	case "notify_priority_changes":
		in.NotifyPriorityChanges, _ = p.optBool(k)
	case "lvs_sync_daemon_interface":
		p.deprecated(k, "global_defs lvs_sync_daemon")
		in.LVSSyncDaemonInterface, _ = p.str(k)
	default:
		if ignoredInstance[kw] {
			p.ignore(k)
			return
		}
		p.unknown(k)
	}
}

// ipAddress parses <IPADDR>[/<MASK>] [brd <IPADDR>] [dev <STRING>]
// [scope <SCOPE>] [label <LABEL>] [peer <IPADDR>] [flags...].
func (p *parser) ipAddress(k *node, vip bool) (IPAddress, bool) {
	a := IPAddress{Pos: k.pos}
	w := k.words
	s := w[0]
	var err error
	if strings.Contains(s, "/") {
		a.Prefix, err = netip.ParsePrefix(s)
	} else {
		var ad netip.Addr
		ad, err = netip.ParseAddr(s)
		if err == nil {
			a.Prefix = netip.PrefixFrom(ad, ad.BitLen())
		}
	}
	if err != nil || a.Prefix.Addr().Zone() != "" {
		p.errorf(k, "invalid IP address %q", s)
		return a, false
	}
	a.Prefix = netip.PrefixFrom(a.Prefix.Addr().Unmap(), a.Prefix.Bits())
	val := func(i int) (string, bool) {
		if i+1 >= len(w) {
			p.errorf(k, "missing value after %q", w[i])
			return "", false
		}
		return w[i+1], true
	}
	for i := 1; i < len(w); i++ {
		switch w[i] {
		case "brd", "broadcast":
			v, ok := val(i)
			if !ok {
				return a, false
			}
			if v != "+" && v != "-" {
				b, err := netip.ParseAddr(v)
				if err != nil || !b.Is4() || !a.Prefix.Addr().Is4() {
					p.errorf(k, "invalid broadcast address %q", v)
					return a, false
				}
			}
			a.Brd = v
			i++
		case "dev":
			v, ok := val(i)
			if !ok {
				return a, false
			}
			a.Dev = v
			i++
		case "scope":
			v, ok := val(i)
			if !ok {
				return a, false
			}
			switch v {
			case "site", "link", "host", "nowhere", "global":
			default:
				if _, ok := parseUint(v, 0, 255); !ok {
					p.errorf(k, "invalid scope %q", v)
					return a, false
				}
			}
			a.Scope = v
			i++
		case "label":
			v, ok := val(i)
			if !ok {
				return a, false
			}
			a.Label = v
			i++
		case "peer":
			v, ok := val(i)
			if !ok {
				return a, false
			}
			pf, err := netip.ParsePrefix(v)
			if err != nil {
				ad, err2 := netip.ParseAddr(v)
				if err2 != nil {
					p.errorf(k, "invalid peer address %q", v)
					return a, false
				}
				pf = netip.PrefixFrom(ad, ad.BitLen())
			}
			a.Peer = pf
			i++
		case "no_track":
			a.NoTrack = true
		case "preferred_lft", "track_group":
			v, ok := val(i)
			if !ok {
				return a, false
			}
			a.Flags = append(a.Flags, w[i], v)
			i++
		case "home", "-nodad", "mngtmpaddr", "noprefixroute", "autojoin", "use_vmac":
			a.Flags = append(a.Flags, w[i])
		default:
			p.errorf(k, "unknown address option %q", w[i])
			return a, false
		}
	}
	return a, true
}

// routeValueWords take one value in virtual_routes / static_routes.
var routeValueWords = map[string]bool{
	"src": true, "via": true, "gw": true, "or": true, "dev": true, "table": true, "scope": true,
	"metric": true, "priority": true, "preference": true, "protocol": true, "proto": true, "tos": true,
	"mtu": true, "hoplimit": true, "advmss": true, "rtt": true, "rttvar": true, "reordering": true,
	"window": true, "cwnd": true, "ssthresh": true, "realms": true, "rto_min": true, "initcwnd": true,
	"initrwnd": true, "vrf": true, "features": true, "fastopen_no_cookie": true, "track_group": true,
	"weight": true, "congctl": true, "pref": true, "quickack": true, "encap": true, "expires": true,
}

// route reads the destination, gateway, device and table of a route,
// keeping its words as written.
func (p *parser) route(k *node) Route {
	r := Route{Pos: k.pos, Words: k.words}
	w := k.words
	for i := 0; i < len(w); i++ {
		if routeValueWords[w[i]] && i+1 < len(w) {
			switch w[i] {
			case "via", "gw":
				if a, err := netip.ParseAddr(w[i+1]); err == nil && !r.Via.IsValid() {
					r.Via = a
				}
			case "dev":
				r.Dev = w[i+1]
			case "table":
				r.Table = w[i+1]
			}
			i++
			continue
		}
		if r.Dst.IsValid() {
			continue
		}
		if pf, err := netip.ParsePrefix(w[i]); err == nil {
			r.Dst = pf
		} else if a, err := netip.ParseAddr(w[i]); err == nil {
			r.Dst = netip.PrefixFrom(a, a.BitLen())
		}
	}
	return r
}

// finishVRRP resolves the VRRP configuration once everything is read.
func (p *parser) finishVRRP() {
	g := &p.cfg.Global
	names := map[string]*instState{}
	for _, st := range p.instances {
		if o := names[st.in.Name]; o != nil {
			p.errorf(st.n, "vrrp_instance %s is already defined at %s", st.in.Name, o.in.Pos)
			continue
		}
		if p.finishInstance(st) {
			names[st.in.Name] = st
		}
	}
	// Sync groups.
	member := map[string]string{}
	for _, gs := range p.groups {
		sg := &gs.sg
		var members []string
		for _, m := range sg.Members {
			if names[m] == nil {
				p.warnf(gs.n, "virtual router %s specified in sync group %s doesn't exist - ignoring", m, sg.Name)
				continue
			}
			if o, ok := member[m]; ok {
				p.errorf(gs.n, "vrrp_instance %s is already in sync group %s", m, o)
				continue
			}
			member[m] = sg.Name
			members = append(members, m)
		}
		sg.Members = members
		if len(members) == 0 {
			p.warnf(gs.n, "sync group %s has no virtual router(s) - removing", sg.Name)
			continue
		}
		if len(members) == 1 {
			p.warnf(gs.n, "sync group %s has only 1 virtual router - this probably isn't what you want", sg.Name)
		}
		sg.TrackScripts = p.resolveScripts(gs.tscripts)
		sg.TrackFiles = p.resolveFiles(gs.tfiles)
		for _, m := range members {
			st := names[m]
			st.in.SyncGroup = sg.Name
			if !sg.SyncGroupTrackingWeight {
				p.zeroMemberWeights(st, sg.Name)
			}
		}
		p.cfg.VRRPSyncGroups = append(p.cfg.VRRPSyncGroups, *sg)
	}
	// Duplicate VRIDs on one interface, family and (multicast) group.
	type vkey struct {
		ifname string
		fam    service.Family
		vrid   uint8
	}
	seen := map[vkey]*instState{}
	for _, st := range p.instances {
		if names[st.in.Name] != st {
			continue
		}
		k := vkey{st.in.Interface, st.in.Family, st.in.VRID}
		if o := seen[k]; o != nil && peersOverlap(o.in, st.in) {
			p.errorf(st.n, "virtual_router_id %d is already used by vrrp_instance %s on %s (%s)", st.in.VRID, o.in.Name, st.in.Interface, o.in.Pos)
			continue
		}
		seen[k] = st
		p.cfg.VRRPInstances = append(p.cfg.VRRPInstances, st.in)
	}
	// The sync daemon's instance.
	if sd := g.LVSSyncDaemon; sd != nil && p.sync != nil {
		if sd.Instance != "" {
			st := names[sd.Instance]
			if st == nil {
				p.errorf(p.sync.n, "vrrp_instance %s is not defined", sd.Instance)
			} else if !p.sync.idSet {
				sd.SyncID = st.in.VRID
			}
		}
	}
	if g.LVSSyncDaemon == nil {
		for _, in := range p.cfg.VRRPInstances {
			if in.LVSSyncDaemonInterface != "" {
				// The deprecated per-instance form: the daemons follow
				// this instance, with its VRID as sync id.
				g.LVSSyncDaemon = &SyncDaemon{Pos: in.Pos, Interface: in.LVSSyncDaemonInterface, Instance: in.Name,
					SyncID: in.VRID, Port: 8848, Group: netip.AddrFrom4([4]byte{224, 0, 0, 81})}
				break
			}
		}
	}
}

// peersOverlap reports whether two instances with one VRID on one
// interface would see each other's adverts: both multicast (same group),
// or unicast with a common peer.
func peersOverlap(a, b VRRPInstance) bool {
	if len(a.UnicastPeers) == 0 && len(b.UnicastPeers) == 0 {
		return a.McastDstIP == b.McastDstIP
	}
	for _, x := range a.UnicastPeers {
		for _, y := range b.UnicastPeers {
			if x.Addr == y.Addr {
				return true
			}
		}
	}
	return false
}

func (p *parser) zeroMemberWeights(st *instState, group string) {
	in := &st.in
	warned := false
	warn := func() {
		if !warned {
			p.warnf(st.n, "vrrp_instance %s is in sync group %s: its tracking weights are set to 0 (use sync_group_tracking_weight to keep them)", in.Name, group)
			warned = true
		}
	}
	for i := range in.TrackInterfaces {
		if in.TrackInterfaces[i].Weight != 0 {
			warn()
			in.TrackInterfaces[i].Weight = 0
		}
	}
	for i := range in.TrackScripts {
		if in.TrackScripts[i].Weight != 0 {
			warn()
			in.TrackScripts[i].Weight = 0
		}
	}
	for i := range in.TrackFiles {
		if in.TrackFiles[i].Weight != 0 {
			warn()
			in.TrackFiles[i].Weight = 0
		}
	}
}

func (p *parser) resolveScripts(refs []trackRef) []TrackScript {
	var out []TrackScript
	for _, r := range refs {
		var sc *VRRPScript
		for i := range p.cfg.VRRPScripts {
			if p.cfg.VRRPScripts[i].Name == r.name {
				sc = &p.cfg.VRRPScripts[i]
			}
		}
		if sc == nil {
			p.warnf(r.n, "track script %s not found, ignoring", r.name)
			continue
		}
		t := TrackScript{Name: r.name, Weight: sc.Weight, Reverse: sc.Reverse}
		if r.weightSet {
			t.Weight, t.Reverse = r.weight, r.reverse
		}
		out = append(out, t)
	}
	return out
}

func (p *parser) resolveFiles(refs []trackRef) []TrackFileRef {
	var out []TrackFileRef
	for _, r := range refs {
		tf := p.findTrackFile(r.name)
		if tf == nil {
			p.warnf(r.n, "track file %s not found, ignoring", r.name)
			continue
		}
		t := TrackFileRef{Name: r.name, Weight: tf.Weight, Reverse: tf.Reverse}
		if r.weightSet {
			t.Weight, t.Reverse = r.weight, r.reverse
		}
		out = append(out, t)
	}
	return out
}

// finishInstance applies defaults and keepalived's checks to an instance.
func (p *parser) finishInstance(st *instState) bool {
	in := &st.in
	g := &p.cfg.Global
	n := st.n
	ok := true
	if in.VRID == 0 {
		p.errorf(n, "the virtual_router_id must be set")
		ok = false
	}
	// Family: of the advertised VIPs.
	in.Family = service.IPv4
	if len(in.VIPs) > 0 {
		in.Family = service.FamilyOf(in.VIPs[0].Prefix.Addr())
	} else if len(in.UnicastPeers) > 0 {
		in.Family = service.FamilyOf(in.UnicastPeers[0].Addr)
	}
	for _, v := range in.VIPs[min(1, len(in.VIPs)):] {
		if service.FamilyOf(v.Prefix.Addr()) != in.Family {
			p.errorf(n, "virtual_ipaddress %s: address family must match the instance's (%v); use virtual_ipaddress_excluded for the other family", v.Prefix, in.Family)
			ok = false
		}
	}
	for _, u := range in.UnicastPeers {
		if service.FamilyOf(u.Addr) != in.Family {
			p.errorf(n, "unicast_peer %s: address family must match the instance's (%v)", u.Addr, in.Family)
			ok = false
		}
	}
	for _, a := range []netip.Addr{in.UnicastSrcIP, in.McastSrcIP, in.McastDstIP} {
		if a.IsValid() && service.FamilyOf(a) != in.Family {
			p.errorf(n, "address %s: family must match the instance's (%v)", a, in.Family)
			ok = false
		}
	}
	if in.Interface == "" && len(in.UnicastPeers) == 0 {
		p.errorf(n, "an interface is needed (it may only be omitted with unicast_peer)")
		ok = false
	}
	if len(in.VIPs) == 0 {
		p.warnf(n, "no VIP specified; at least one is sensible")
	}
	// Version.
	in.Version = g.VRRPVersion
	if st.version != 0 {
		in.Version = st.version
	}
	if in.Family == service.IPv6 && in.Version != 3 {
		if st.version == 2 {
			p.warnf(n, "IPv6 instances use VRRPv3 - setting version 3")
		}
		in.Version = 3
	}
	// Advert interval.
	if in.AdvertInt <= 0 {
		if st.advert != nil {
			p.errorf(st.advert, "advert_int must be positive")
		}
		in.AdvertInt = time.Second
	}
	if in.Version == 2 {
		if r := in.AdvertInt.Round(time.Second); r != in.AdvertInt {
			p.warnf(st.advert, "VRRPv2 advertisement interval %v must be an integer - rounding to %v", in.AdvertInt, max(r, time.Second))
			in.AdvertInt = max(r, time.Second)
		}
	} else {
		// 12 bits of centiseconds.
		if in.AdvertInt > 4095*10*time.Millisecond {
			p.errorf(st.advert, "VRRPv3 advertisement interval %v exceeds 40.95s", in.AdvertInt)
			ok = false
		}
		c := in.AdvertInt.Round(10 * time.Millisecond)
		if c != in.AdvertInt {
			p.warnf(st.advert, "VRRPv3 advertisement interval %v rounded to centiseconds (%v)", in.AdvertInt, max(c, 10*time.Millisecond))
			in.AdvertInt = max(c, 10*time.Millisecond)
		}
	}
	// Strict mode.
	in.Strict = g.VRRPStrict
	if st.strict != Unset {
		in.Strict = st.strict == True
	}
	if in.Strict {
		if len(in.UnicastPeers) > 0 {
			p.errorf(n, "strict mode: unicast peers are not allowed")
			ok = false
		}
		if in.Auth != nil {
			p.errorf(st.authN, "strict mode: authentication is not allowed")
			ok = false
		}
		if in.PreemptDelay > 0 {
			p.errorf(n, "strict mode: preempt_delay is not allowed")
			ok = false
		}
		if (in.State == StateMaster) != (in.Priority == 255) {
			p.errorf(n, "strict mode: state MASTER is allowed if and only if the priority is 255")
			ok = false
		}
		if len(in.VIPs) == 0 {
			p.errorf(n, "strict mode: at least one VIP is needed")
			ok = false
		}
	}
	if in.Auth != nil && in.Version == 3 {
		p.warnf(st.authN, "authentication is not supported with VRRPv3 - ignoring")
		in.Auth = nil
	}
	in.Accept = !in.Strict || in.Priority == 255
	if st.accept != Unset {
		in.Accept = st.accept == True
	}
	if in.State == StateMaster && in.Nopreempt {
		p.warnf(n, "nopreempt needs state BACKUP - resetting nopreempt")
		in.Nopreempt = false
	}
	if in.Priority == 255 && in.Nopreempt {
		p.warnf(n, "nopreempt is incompatible with priority 255 - resetting nopreempt")
		in.Nopreempt = false
	}
	if in.State == StateMaster && in.PreemptDelay > 0 {
		p.warnf(n, "preempt_delay needs state BACKUP - resetting preempt_delay")
		in.PreemptDelay = 0
	}
	// GARP and robustness knobs: the instance's, else the globals.
	in.GARP = g.VRRPGARP
	o := st.garp
	if o.masterDelay != nil {
		in.GARP.MasterDelay = *o.masterDelay
		if o.lowerPrioDelay == nil {
			in.GARP.LowerPrioDelay = *o.masterDelay
		}
	}
	if o.masterRepeat != nil {
		in.GARP.MasterRepeat = *o.masterRepeat
		if o.lowerPrioRepeat == nil {
			in.GARP.LowerPrioRepeat = *o.masterRepeat
		}
	}
	if o.lowerPrioDelay != nil {
		in.GARP.LowerPrioDelay = *o.lowerPrioDelay
	}
	if o.lowerPrioRepeat != nil {
		in.GARP.LowerPrioRepeat = *o.lowerPrioRepeat
	}
	if o.masterRefresh != nil {
		in.GARP.MasterRefresh = *o.masterRefresh
	}
	if o.masterRefreshRept != nil {
		in.GARP.MasterRefreshRepeat = *o.masterRefreshRept
	}
	if in.DownTimerAdverts == 0 {
		in.DownTimerAdverts = g.VRRPDownTimerAdverts
	}
	in.LowerPrioNoAdvert = g.VRRPLowerPrioNoAdvert || in.Strict
	if st.lowerNoAdv != Unset {
		in.LowerPrioNoAdvert = st.lowerNoAdv == True
	}
	in.HigherPrioSendAdvert = g.VRRPHigherPrioSendAdvert
	if st.higherSend != Unset {
		in.HigherPrioSendAdvert = st.higherSend == True
	}
	in.SkipCheckAdvAddr = g.VRRPSkipCheckAdvAddr
	if st.skipCheck != Unset {
		in.SkipCheckAdvAddr = st.skipCheck == True
	}
	in.CheckUnicastSrc = in.CheckUnicastSrc || g.VRRPCheckUnicastSrc
	in.NotifyPriorityChanges = in.NotifyPriorityChanges || g.VRRPNotifyPriorityChanges
	// Trackers.
	var tis []TrackInterface
	for _, t := range in.TrackInterfaces {
		if t.Name == in.Interface && !in.DontTrackPrimary {
			p.warnf(n, "ignoring track_interface %s since it is the instance's own interface", t.Name)
			continue
		}
		tis = append(tis, t)
	}
	in.TrackInterfaces = tis
	in.TrackScripts = p.resolveScripts(st.tscripts)
	in.TrackFiles = p.resolveFiles(st.tfiles)
	if in.Priority == 255 {
		for _, t := range in.TrackScripts {
			if t.Weight != 0 {
				p.warnf(n, "track_script %s: weights cannot change an address owner's priority (255)", t.Name)
			}
		}
	}
	return ok
}

// itoa is strconv.Itoa, kept short for messages.
func itoa(i int) string { return strconv.Itoa(i) }
