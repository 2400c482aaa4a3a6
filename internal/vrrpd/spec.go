package vrrpd

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"golvs/internal/keepalived"
	"golvs/internal/service"
	"golvs/internal/vrrp"
)

// Address flags of virtual_ipaddress words (linux/if_addr.h IFA_F_*).
const (
	ifaNoDAD          = 0x02
	ifaHomeAddress    = 0x10
	ifaManageTempAddr = 0x100
	ifaNoPrefixRoute  = 0x200
	ifaMcAutoJoin     = 0x400
)

// Scopes of ip-address(8) (linux/rtnetlink.h RT_SCOPE_*).
var scopes = map[string]int{"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}

// vipSpec is one virtual address as the kernel gets it.
type vipSpec struct {
	Prefix    netip.Prefix
	Dev       string // the instance's interface unless dev was given
	Label     string
	Scope     int
	Broadcast netip.Addr
	Peer      netip.Prefix
	Flags     int
	// PreferredLft is the preferred lifetime in seconds, -1 for forever.
	// keepalived 2.2.7 adds IPv6 VIPs with 0 (measured: "nodad
	// deprecated", valid_lft forever, preferred_lft 0sec), so that the
	// kernel does not pick a VIP as the source of the director's own
	// connections (RFC 6724 rule 3); IPv4 ones forever.
	PreferredLft int
	// Excluded: virtual_ipaddress_excluded (added and announced, not
	// listed in adverts).
	Excluded bool
}

func (v vipSpec) String() string { return v.Prefix.String() + " dev " + v.Dev }

// trackKind says what a tracker follows.
type trackKind uint8

const (
	trackLink   trackKind = iota + 1 // an interface: up and running
	trackScript                      // a vrrp_script: its result after rise/fall
)

// trackSpec is one tracked object of an instance.
type trackSpec struct {
	Kind    trackKind
	Name    string // interface or vrrp_script name
	Weight  int    // 0: a failure is a FAULT
	Reverse bool
}

// instSpec is one vrrp_instance ready to run.
type instSpec struct {
	Name  string
	Group string // its sync group, "" for none
	// Iface is the interface the instance speaks on; "" for a unicast
	// instance without one (its unicast_src_ip's interface).
	Iface  string
	Family vrrp.Family
	// Proto is the protocol configuration without LocalAddr, which is
	// found at start (SrcIP, or the interface's primary address).
	Proto vrrp.Config
	SrcIP netip.Addr
	// McastGroup is the multicast group; invalid for unicast.
	McastGroup netip.Addr
	UnicastTTL int
	VIPs       []vipSpec
	Trackers   []trackSpec
	Notify     keepalived.Notify
}

// unitSpec is what one goroutine runs: a lone instance or a sync group.
type unitSpec struct {
	Key     string // "instance NAME" or "group NAME"
	Group   string // the sync group's name; "" for a lone instance
	Members []*instSpec
	Notify  keepalived.Notify // the group's
	Scripts []keepalived.VRRPScript
	// GARPInterval and GNAInterval space the announcements of a burst
	// (vrrp_garp_interval, vrrp_gna_interval).
	GARPInterval, GNAInterval time.Duration
	// FP is the fingerprint of everything above: a reload restarts the
	// unit when it changes.
	FP string
}

// buildSpecs turns a configuration into units. Instances keepalived
// would refuse, or that GoLVS cannot run, are left out with an error;
// what GoLVS parses but does not do is a warning.
func buildSpecs(cfg *keepalived.Config) (units []*unitSpec, warns []string, errs []error) {
	scripts := map[string]keepalived.VRRPScript{}
	for _, s := range cfg.VRRPScripts {
		scripts[s.Name] = s
	}
	groups := map[string]*keepalived.SyncGroup{}
	for i := range cfg.VRRPSyncGroups {
		groups[cfg.VRRPSyncGroups[i].Name] = &cfg.VRRPSyncGroups[i]
	}
	g := &cfg.Global
	for name, s := range scripts {
		s.Script = *withUser(&s.Script, g)
		scripts[name] = s
	}
	byGroup := map[string]*unitSpec{}
	failed := map[string]bool{} // groups with a member left out
	for i := range cfg.VRRPInstances {
		in := &cfg.VRRPInstances[i]
		sg := groups[in.SyncGroup]
		is, w, err := buildInstance(in, sg, g)
		for _, x := range w {
			warns = append(warns, fmt.Sprintf("vrrp_instance %s: %s", in.Name, x))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("vrrp_instance %s: %w", in.Name, err))
			if sg != nil {
				failed[sg.Name] = true
			}
			continue
		}
		if sg == nil {
			units = append(units, &unitSpec{Key: "instance " + in.Name, Members: []*instSpec{is}})
			continue
		}
		u := byGroup[sg.Name]
		if u == nil {
			u = &unitSpec{Key: "group " + sg.Name, Group: sg.Name, Notify: notifyWithUser(sg.Notify, g)}
			byGroup[sg.Name] = u
			units = append(units, u)
		}
		u.Members = append(u.Members, is)
	}
	kept := units[:0]
	for _, u := range units {
		if u.Group != "" && failed[u.Group] {
			errs = append(errs, fmt.Errorf("vrrp_sync_group %s: not started: a member cannot run", u.Group))
			continue
		}
		u.GARPInterval, u.GNAInterval = g.VRRPGARPInterval, g.VRRPGNAInterval
		names := map[string]bool{}
		for _, m := range u.Members {
			for _, t := range m.Trackers {
				if t.Kind == trackScript && !names[t.Name] {
					names[t.Name] = true
					u.Scripts = append(u.Scripts, scripts[t.Name])
				}
			}
		}
		slices.SortFunc(u.Scripts, func(a, b keepalived.VRRPScript) int { return strings.Compare(a.Name, b.Name) })
		u.FP = fingerprint(u)
		kept = append(kept, u)
	}
	return kept, warns, errs
}

// buildInstance converts one vrrp_instance (with its sync group, if any).
func buildInstance(in *keepalived.VRRPInstance, sg *keepalived.SyncGroup, g *keepalived.GlobalDefs) (*instSpec, []string, error) {
	var warns []string
	warn := func(f string, a ...any) { warns = append(warns, fmt.Sprintf(f, a...)) }
	is := &instSpec{Name: in.Name, Iface: in.Interface, UnicastTTL: in.UnicastTTL, Notify: notifyWithUser(in.Notify, g)}
	if sg != nil {
		is.Group = sg.Name
	}
	is.Family = vrrp.IPv4
	if in.Family == service.IPv6 {
		is.Family = vrrp.IPv6
	}
	pc := vrrp.Config{
		Name:                 in.Name,
		VRID:                 in.VRID,
		Priority:             in.Priority,
		AdvertInt:            in.AdvertInt,
		Version:              uint8(in.Version),
		NoPreempt:            in.Nopreempt,
		PreemptDelay:         in.PreemptDelay,
		CheckUnicastSrc:      in.CheckUnicastSrc,
		NoAccept:             !in.Accept,
		DownTimerAdverts:     in.DownTimerAdverts,
		LowerPrioNoAdvert:    in.LowerPrioNoAdvert,
		HigherPrioSendAdvert: in.HigherPrioSendAdvert,
		SkipCheckAdvAddr:     in.SkipCheckAdvAddr,
		GARP:                 garpConfig(in.GARP),
	}
	pc.InitialState = vrrp.Backup
	if in.State == keepalived.StateMaster {
		pc.InitialState = vrrp.Master
	}
	if in.Auth != nil {
		switch in.Auth.Type {
		case "PASS":
			pc.Auth, pc.AuthPass = vrrp.AuthPass, in.Auth.Pass
		case "AH":
			return nil, warns, fmt.Errorf("auth_type AH (IPsec AH) is not implemented; use PASS or none")
		}
	}
	for _, p := range in.UnicastPeers {
		pc.UnicastPeers = append(pc.UnicastPeers, p.Addr)
		if p.MinTTL >= 0 || p.MaxTTL >= 0 {
			warn("unicast_peer %v: min_ttl/max_ttl are not checked", p.Addr)
		}
	}
	if len(pc.UnicastPeers) > 0 {
		is.SrcIP = in.UnicastSrcIP
		if !is.SrcIP.IsValid() {
			is.SrcIP = in.McastSrcIP
		}
	} else {
		is.SrcIP = in.McastSrcIP
		is.McastGroup = in.McastDstIP
		if !is.McastGroup.IsValid() {
			is.McastGroup = g.VRRPMcastGroup4
			if is.Family == vrrp.IPv6 {
				is.McastGroup = g.VRRPMcastGroup6
			}
		}
		if !is.McastGroup.IsValid() {
			is.McastGroup = vrrp.MulticastIPv4
			if is.Family == vrrp.IPv6 {
				is.McastGroup = vrrp.MulticastIPv6
			}
		}
	}
	if is.Iface == "" && !is.SrcIP.IsValid() {
		return nil, warns, fmt.Errorf("a unicast instance without interface needs unicast_src_ip")
	}
	for _, list := range []struct {
		vips     []keepalived.IPAddress
		excluded bool
	}{{in.VIPs, false}, {in.ExcludedVIPs, true}} {
		for _, a := range list.vips {
			v, w, err := buildVIP(a, is.Iface)
			for _, x := range w {
				warn("virtual_ipaddress %v: %s", a.Prefix, x)
			}
			if err != nil {
				return nil, warns, fmt.Errorf("virtual_ipaddress %v: %w", a.Prefix, err)
			}
			v.Excluded = list.excluded
			is.VIPs = append(is.VIPs, v)
			if !list.excluded {
				pc.VIPs = append(pc.VIPs, v.Prefix.Addr())
			}
		}
	}
	is.Proto = pc

	// Trackers: the instance's interface (unless dont_track_primary),
	// its track_interface and track_script entries, its sync group's.
	// Weights of members of a sync group count only with
	// sync_group_tracking_weight (keepalived: "weights will be ignored":
	// the tracker then acts unweighted, a failure being a FAULT).
	ignoreWeights := sg != nil && !sg.SyncGroupTrackingWeight
	if is.Iface != "" && !in.DontTrackPrimary {
		is.Trackers = append(is.Trackers, trackSpec{Kind: trackLink, Name: is.Iface})
	}
	add := func(t trackSpec, what string) {
		if ignoreWeights && t.Weight != 0 {
			warn("%s %s: weight ignored in sync group %s (no sync_group_tracking_weight)", what, t.Name, sg.Name)
			t.Weight, t.Reverse = 0, false
		}
		is.Trackers = append(is.Trackers, t)
	}
	for _, t := range in.TrackInterfaces {
		add(trackSpec{Kind: trackLink, Name: t.Name, Weight: t.Weight, Reverse: t.Reverse}, "track_interface")
	}
	for _, t := range in.TrackScripts {
		add(trackSpec{Kind: trackScript, Name: t.Name, Weight: t.Weight, Reverse: t.Reverse}, "track_script")
	}
	if len(in.TrackFiles) > 0 {
		warn("track_file is not implemented: ignored")
	}
	if sg != nil {
		for _, t := range sg.TrackInterfaces {
			add(trackSpec{Kind: trackLink, Name: t.Name, Weight: t.Weight, Reverse: t.Reverse}, "sync group track_interface")
		}
		for _, t := range sg.TrackScripts {
			add(trackSpec{Kind: trackScript, Name: t.Name, Weight: t.Weight, Reverse: t.Reverse}, "sync group track_script")
		}
		if len(sg.TrackFiles) > 0 {
			warn("sync group %s: track_file is not implemented: ignored", sg.Name)
		}
	}
	if len(in.VirtualRoutes) > 0 || len(in.VirtualRules) > 0 {
		warn("virtual_routes and virtual_rules are not implemented: ignored")
	}
	if !in.Accept {
		warn("no_accept is not implemented: the VIPs accept traffic")
	}
	if in.UnicastFaultNoPeer {
		warn("unicast_fault_no_peer is not implemented: ignored")
	}
	if in.TrackSrcIP {
		warn("track_src_ip is not implemented: ignored")
	}
	if in.NotifyPriorityChanges {
		warn("notify_priority_changes writes to the notify FIFO, which GoLVS does not have: ignored")
	}
	// Check now what NewInstance will refuse at start; the source
	// address is found then (a stand-in of the family meanwhile).
	check := is.Proto
	check.LocalAddr = is.SrcIP
	if !check.LocalAddr.IsValid() {
		check.LocalAddr = netip.IPv4Unspecified()
		if is.Family == vrrp.IPv6 {
			check.LocalAddr = netip.IPv6Unspecified()
		}
	}
	if _, _, err := check.Normalize(); err != nil {
		return nil, warns, err
	}
	return is, warns, nil
}

// withUser returns s with the global script_user when it names none
// (keepalived's default; without one, scripts run as lvsd's user where
// keepalived would pick keepalived_script or root).
func withUser(s *keepalived.Script, g *keepalived.GlobalDefs) *keepalived.Script {
	if s == nil || s.User != "" || g.ScriptUser == "" {
		return s
	}
	c := *s
	c.User, c.Group = g.ScriptUser, g.ScriptGroup
	return &c
}

// notifyWithUser is withUser for every script of n.
func notifyWithUser(n keepalived.Notify, g *keepalived.GlobalDefs) keepalived.Notify {
	for _, p := range []**keepalived.Script{&n.Master, &n.Backup, &n.Fault, &n.Stop, &n.Deleted, &n.Any, &n.MasterRxLowerPri} {
		*p = withUser(*p, g)
	}
	return n
}

// garpConfig maps keepalived's GARP settings (defaults applied, 0 =
// none) to vrrp's (0 = default, negative = none).
func garpConfig(g keepalived.GARP) vrrp.GARPConfig {
	none := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1
		}
		return d
	}
	count := func(n int) int {
		if n == 0 {
			return -1
		}
		return n
	}
	return vrrp.GARPConfig{
		MasterDelay:     none(g.MasterDelay),
		MasterRepeat:    count(g.MasterRepeat),
		Refresh:         g.MasterRefresh,
		RefreshRepeat:   count(g.MasterRefreshRepeat),
		LowerPrioDelay:  none(g.LowerPrioDelay),
		LowerPrioRepeat: count(g.LowerPrioRepeat),
	}
}

// buildVIP converts a virtual_ipaddress entry.
func buildVIP(a keepalived.IPAddress, iface string) (vipSpec, []string, error) {
	var warns []string
	v := vipSpec{Prefix: a.Prefix, Dev: a.Dev, Label: a.Label, Peer: a.Peer, PreferredLft: -1}
	if a.Prefix.Addr().Is6() {
		v.PreferredLft = 0
	}
	if v.Dev == "" {
		v.Dev = iface
	}
	if v.Dev == "" {
		return v, warns, fmt.Errorf("no interface: give dev or the instance's interface")
	}
	if a.Scope != "" {
		s, ok := scopes[a.Scope]
		if !ok {
			n, err := strconv.ParseUint(a.Scope, 10, 8)
			if err != nil {
				return v, warns, fmt.Errorf("invalid scope %q", a.Scope)
			}
			s = int(n)
		}
		v.Scope = s
	}
	switch a.Brd {
	case "":
	case "+", "-":
		if a.Prefix.Addr().Is4() && a.Prefix.Bits() < 31 {
			b := a.Prefix.Masked().Addr().As4()
			if a.Brd == "+" {
				host := ^uint32(0) >> a.Prefix.Bits()
				for i := range 4 {
					b[i] |= byte(host >> (24 - 8*i))
				}
			}
			v.Broadcast = netip.AddrFrom4(b)
		}
	default:
		b, err := netip.ParseAddr(a.Brd)
		if err != nil {
			return v, warns, fmt.Errorf("invalid broadcast %q", a.Brd)
		}
		v.Broadcast = b
	}
	for i := 0; i < len(a.Flags); i++ {
		switch f := a.Flags[i]; f {
		case "-nodad":
			v.Flags |= ifaNoDAD
		case "home":
			v.Flags |= ifaHomeAddress
		case "mngtmpaddr":
			v.Flags |= ifaManageTempAddr
		case "noprefixroute":
			v.Flags |= ifaNoPrefixRoute
		case "autojoin":
			v.Flags |= ifaMcAutoJoin
		case "preferred_lft":
			i++
			if i == len(a.Flags) {
				return v, warns, fmt.Errorf("preferred_lft without a value")
			}
			if val := a.Flags[i]; val == "forever" {
				v.PreferredLft = -1
			} else {
				n, err := strconv.ParseUint(val, 10, 31)
				if err != nil {
					return v, warns, fmt.Errorf("invalid preferred_lft %q", val)
				}
				v.PreferredLft = int(n)
			}
		case "track_group":
			warns = append(warns, f+" is not implemented: ignored")
			i++
		default:
			warns = append(warns, f+" is not implemented: ignored")
		}
	}
	if a.NoTrack {
		warns = append(warns, "no_track is not implemented: ignored")
	}
	return v, warns, nil
}

// fingerprint identifies what a unit runs: the JSON of its spec, without
// anything that only says where in the file it was written.
func fingerprint(u *unitSpec) string {
	c := *u
	c.FP = ""
	b, err := json.Marshal(c)
	if err != nil {
		panic("vrrpd: fingerprint: " + err.Error()) // plain data: cannot fail
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		panic("vrrpd: fingerprint: " + err.Error())
	}
	dropPos(v)
	b, _ = json.Marshal(v)
	return string(b)
}

// dropPos removes every "Pos" member (a position in the configuration
// file) from a decoded JSON value: moving a block does not change it.
func dropPos(v any) {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "Pos")
		for _, e := range x {
			dropPos(e)
		}
	case []any:
		for _, e := range x {
			dropPos(e)
		}
	}
}
