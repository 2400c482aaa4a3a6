package keepalived

import (
	"net/netip"
	"time"
)

// ignoredTop are top-level keywords keepalived knows and GoLVS reads
// without acting on them.
var ignoredTop = map[string]bool{
	"net_namespace": true, "net_namespace_ipvs": true, "namespace_with_ipsets": true,
	"instance": true, "use_pid_dir": true, "linkbeat_use_polling": true, "child_wait_time": true,
	"linkbeat_interfaces": true, "track_group": true, "vrrp_track_process": true,
	"bfd_instance": true, "garp_group": true, "interface_up_down_delays": true,
}

// top dispatches the top-level blocks.
func (p *parser) top(nodes []*node) {
	for _, n := range nodes {
		switch n.kw() {
		case "global_defs":
			if p.needBlock(n) {
				p.globalDefs(n)
			}
		case "static_ipaddress":
			p.ignore(n)
			for _, k := range p.valueLines(n) {
				if a, ok := p.ipAddress(k, false); ok {
					p.cfg.StaticIPAddresses = append(p.cfg.StaticIPAddresses, a)
				}
			}
		case "static_routes":
			p.ignore(n)
			for _, k := range p.valueLines(n) {
				p.cfg.StaticRoutes = append(p.cfg.StaticRoutes, p.route(k))
			}
		case "static_rules":
			p.ignore(n)
			for _, k := range p.valueLines(n) {
				p.cfg.StaticRules = append(p.cfg.StaticRules, Rule{Pos: k.pos, Words: k.words})
			}
		case "track_file", "vrrp_track_file":
			if n.kw() == "vrrp_track_file" {
				p.deprecated(n, "track_file")
			}
			p.trackFile(n)
		case "SSL":
			p.ssl(n)
		case "vrrp_script", "vrrp_track_script":
			p.vrrpScript(n)
		case "vrrp_sync_group":
			p.syncGroup(n)
		case "vrrp_instance":
			p.vrrpInstance(n)
		case "virtual_server_group":
			p.virtualServerGroup(n)
		case "virtual_server":
			p.virtualServer(n)
		case "bgp":
			p.bgp(n)
		default:
			if ignoredTop[n.kw()] {
				p.ignore(n)
				continue
			}
			p.unknown(n)
		}
	}
}

func defaultGlobal() GlobalDefs {
	return GlobalDefs{
		SMTPConnectTimeout:   30 * time.Second, // keepalived's default
		DefaultInterface:     "eth0",
		VRRPMcastGroup4:      netip.AddrFrom4([4]byte{224, 0, 0, 18}), // RFC 5798 §5.1.1.2
		VRRPMcastGroup6:      netip.MustParseAddr("ff02::12"),         // RFC 5798 §5.1.2.2
		VRRPDownTimerAdverts: 3,                                       // RFC 5798 Master_Down_Interval
		VRRPVersion:          2,
		VRRPGARP: GARP{
			MasterDelay:         5 * time.Second, // keepalived vrrp_garp_master_delay default
			MasterRepeat:        5,               // keepalived vrrp_garp_master_repeat default
			MasterRefreshRepeat: 1,
		},
	}
}

// ignoredGlobal are global_defs keywords GoLVS does not act on.
var ignoredGlobal = map[string]bool{
	"tmp_config_directory": true, "config_save_dir": true, "process_names": true, "process_name": true,
	"vrrp_process_name": true, "checker_process_name": true, "bfd_process_name": true,
	"startup_script": true, "startup_script_timeout": true, "shutdown_script": true, "shutdown_script_timeout": true,
	"vrrp_garp_extra_if": true, "vrrp_garp_extra_if_vmac": true,
	"nftables": true, "nftables_priority": true, "nftables_counters": true, "nftables_ifindex": true,
	"nftables_ipvs": true, "nftables_ipvs_priority": true, "nftables_ipvs_start_fwmark": true,
	"vrrp_iptables": true, "vrrp_ipsets": true, "disable_local_igmp": true,
	"max_auto_priority": true, "min_auto_priority_delay": true,
	"vrrp_priority": true, "checker_priority": true, "bfd_priority": true,
	"vrrp_no_swap": true, "checker_no_swap": true, "bfd_no_swap": true,
	"vrrp_cpu_affinity": true, "checker_cpu_affinity": true, "bfd_cpu_affinity": true,
	"vrrp_rt_priority": true, "checker_rt_priority": true, "bfd_rt_priority": true,
	"vrrp_rlimit_rttime": true, "checker_rlimit_rttime": true, "bfd_rlimit_rttime": true,
	"snmp_socket": true, "enable_snmp_vrrp": true, "enable_snmp_checker": true, "enable_snmp_rfc": true,
	"enable_snmp_rfcv2": true, "enable_snmp_rfcv3": true, "enable_traps": true, "enable_snmp_keepalived": true,
	"enable_dbus": true, "dbus_service_name": true, "fifo_write_vrrp_states_on_reload": true,
	"vrrp_netlink_cmd_rcv_bufs": true, "vrrp_netlink_cmd_rcv_bufs_force": true,
	"vrrp_netlink_monitor_rcv_bufs": true, "vrrp_netlink_monitor_rcv_bufs_force": true,
	"lvs_netlink_cmd_rcv_bufs": true, "lvs_netlink_cmd_rcv_bufs_force": true,
	"lvs_netlink_monitor_rcv_bufs": true, "lvs_netlink_monitor_rcv_bufs_force": true,
	"process_monitor_rcv_bufs": true, "process_monitor_rcv_bufs_force": true,
	"vrrp_rx_bufs_policy": true, "vrrp_rx_bufs_multiplier": true, "rs_init_notifies": true,
	"no_checker_emails": true, "umask": true, "log_unknown_vrids": true, "vmac_prefix": true,
	"vmac_addr_prefix": true, "random_seed": true, "reload_check_config": true, "include_check": true,
	"reload_time_file": true, "reload_repeat": true, "reload_file": true, "data_use_instance": true,
	"linkbeat_use_polling": true, "net_namespace": true, "net_namespace_ipvs": true,
	"namespace_with_ipsets": true, "instance": true, "use_pid_dir": true, "child_wait_time": true,
	"vrrp_garp_lower_prio_no_advert": true, "bfd_rlimit": true, "use_symlink_paths": true,
}

func (p *parser) globalDefs(n *node) {
	g := &p.cfg.Global
	var lowerDelaySet, lowerRepeatSet bool
	for _, k := range n.kids {
		kw := k.kw()
		if kw != "notification_email" && p.noBlock(k) {
			continue
		}
		switch kw {
		case "router_id", "lvs_id":
			if kw == "lvs_id" {
				p.deprecated(k, "router_id")
			}
			if s, ok := p.str(k); ok {
				g.RouterID = s
			}
		case "notification_email":
			p.ignore(k)
			for _, v := range p.valueLines(k) {
				g.NotificationEmail = append(g.NotificationEmail, v.words...)
			}
		case "notification_email_from":
			p.ignore(k)
			g.NotificationEmailFrom, _ = p.str(k)
		case "smtp_server":
			p.ignore(k)
			if p.nargs(k, 1, 2) {
				g.SMTPServer = k.words[1]
				g.SMTPServerPort = 25 // SMTP, RFC 5321
				if len(k.words) > 2 {
					if v, ok := p.uintArg(k, 2, 1, 65535); ok {
						g.SMTPServerPort = uint16(v)
					}
				}
			}
		case "smtp_helo_name":
			g.SMTPHeloName, _ = p.str(k)
		case "smtp_connect_timeout":
			p.ignore(k)
			if v, ok := p.timerArg(k, 1, time.Second, 0); ok {
				g.SMTPConnectTimeout = v
			}
		case "smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker":
			p.ignore(k)
			if v, ok := p.optBool(k); ok {
				t := False
				if v {
					t = True
				}
				switch kw {
				case "smtp_alert":
					g.SMTPAlert = t
				case "smtp_alert_vrrp":
					g.SMTPAlertVRRP = t
				default:
					g.SMTPAlertChecker = t
				}
			}
		case "checker_log_all_failures":
			g.CheckerLogAllFailures, _ = p.optBool(k)
		case "no_email_faults":
			p.ignore(k)
			g.NoEmailFaults = true
		case "script_user":
			if p.nargs(k, 1, 2) {
				g.ScriptUser = k.words[1]
				if len(k.words) > 2 {
					g.ScriptGroup = k.words[2]
				}
			}
		case "enable_script_security":
			g.EnableScriptSecurity = true
		case "default_interface":
			g.DefaultInterface, _ = p.str(k)
		case "dynamic_interfaces":
			g.DynamicInterfaces = true
		case "lvs_sync_daemon":
			p.syncDaemon(k)
		case "lvs_timeouts":
			p.lvsTimeouts(k)
		case "lvs_flush":
			g.LVSFlush = true
		case "lvs_flush_on_stop":
			g.LVSFlushOnStop = FlushOnStopAll
			if len(k.words) > 1 {
				if k.words[1] == "VS" {
					g.LVSFlushOnStop = FlushOnStopVS
				} else {
					p.errorf(k, "unknown parameter %q: expected VS or nothing", k.words[1])
				}
			}
		case "vrrp_mcast_group4", "vrrp_mcast_group6":
			a, ok := p.addrArg(k, 1)
			if !ok {
				continue
			}
			if !a.IsMulticast() || a.Is4() != (kw == "vrrp_mcast_group4") {
				p.errorf(k, "%s is not an IPv%c multicast address", a, kw[len(kw)-1])
				continue
			}
			if a.Is4() {
				g.VRRPMcastGroup4 = a
			} else {
				g.VRRPMcastGroup6 = a
			}
		case "vrrp_garp_master_delay", "vrrp_garp_lower_prio_delay", "vrrp_garp_master_refresh":
			// keepalived reads these in whole seconds, at most a day.
			v, ok := p.timerArg(k, 1, 0, 86400*time.Second)
			if !ok {
				continue
			}
			switch kw {
			case "vrrp_garp_master_delay":
				g.VRRPGARP.MasterDelay = v
			case "vrrp_garp_lower_prio_delay":
				g.VRRPGARP.LowerPrioDelay, lowerDelaySet = v, true
			default:
				g.VRRPGARP.MasterRefresh = v
			}
		case "vrrp_garp_master_repeat", "vrrp_garp_lower_prio_repeat", "vrrp_garp_master_refresh_repeat":
			// keepalived's limit: at most 255 messages in a burst.
			v, ok := p.uintArg(k, 1, 0, 255)
			if !ok {
				continue
			}
			switch kw {
			case "vrrp_garp_master_repeat":
				g.VRRPGARP.MasterRepeat = int(v)
			case "vrrp_garp_lower_prio_repeat":
				g.VRRPGARP.LowerPrioRepeat, lowerRepeatSet = int(v), true
			default:
				g.VRRPGARP.MasterRefreshRepeat = int(v)
			}
		case "vrrp_garp_interval", "vrrp_gna_interval":
			if v, ok := p.timerArg(k, 1, 0, time.Second); ok {
				if kw == "vrrp_garp_interval" {
					g.VRRPGARPInterval = v
				} else {
					g.VRRPGNAInterval = v
				}
			}
		case "vrrp_min_garp":
			if v, ok := p.optBool(k); ok && v {
				// One message, no second burst (keepalived man page).
				g.VRRPGARP.MasterRepeat = 1
				g.VRRPGARP.MasterDelay = 0
			}
		case "vrrp_down_timer_adverts":
			if v, ok := p.uintArg(k, 1, 1, 100); ok {
				g.VRRPDownTimerAdverts = int(v)
			}
		case "vrrp_lower_prio_no_advert":
			g.VRRPLowerPrioNoAdvert, _ = p.optBool(k)
		case "vrrp_higher_prio_send_advert":
			g.VRRPHigherPrioSendAdvert, _ = p.optBool(k)
		case "vrrp_version":
			if v, ok := p.uintArg(k, 1, 2, 3); ok {
				g.VRRPVersion = int(v)
			}
		case "vrrp_strict":
			g.VRRPStrict = true
		case "vrrp_check_unicast_src":
			g.VRRPCheckUnicastSrc = true
		case "vrrp_skip_check_adv_addr":
			g.VRRPSkipCheckAdvAddr, _ = p.optBool(k)
		case "vrrp_notify_priority_changes":
			g.VRRPNotifyPriorityChanges, _ = p.optBool(k)
		case "vrrp_startup_delay":
			// keepalived's limit is an hour.
			if v, ok := p.timerArg(k, 1, 0, time.Hour); ok {
				g.VRRPStartupDelay = v
			}
		case "notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo":
			p.ignore(k)
			f := p.fifoOf(kw)
			if p.nargs(k, 1, 3) {
				f.Name = k.words[1]
				if len(k.words) > 2 {
					f.User = k.words[2]
				}
				if len(k.words) > 3 {
					f.Group = k.words[3]
				}
			}
		case "notify_fifo_script", "vrrp_notify_fifo_script", "lvs_notify_fifo_script":
			p.ignore(k)
			if s, ok := p.script(k); ok {
				p.fifoOf(kw[:len(kw)-len("_script")]).Script = s
			}
		default:
			if ignoredGlobal[kw] {
				p.ignore(k)
				continue
			}
			p.unknown(k)
		}
	}
	if !lowerDelaySet {
		g.VRRPGARP.LowerPrioDelay = g.VRRPGARP.MasterDelay
	}
	if !lowerRepeatSet {
		g.VRRPGARP.LowerPrioRepeat = g.VRRPGARP.MasterRepeat
	}
}

func (p *parser) fifoOf(kw string) *FIFO {
	switch kw {
	case "vrrp_notify_fifo":
		return &p.cfg.Global.VRRPNotifyFIFO
	case "lvs_notify_fifo":
		return &p.cfg.Global.LVSNotifyFIFO
	}
	return &p.cfg.Global.NotifyFIFO
}

// syncState is the lvs_sync_daemon line until the instances are known.
type syncState struct {
	n     *node
	idSet bool
}

// syncDaemon parses lvs_sync_daemon <IF> [[inst] <VRRP_INSTANCE>]
// [id <SYNC_ID>] [maxlen <LEN>] [port <PORT>] [ttl <TTL>] [group <IP>].
func (p *parser) syncDaemon(k *node) {
	if !p.nargs(k, 1, -1) {
		return
	}
	sd := &SyncDaemon{Pos: k.pos, Interface: k.words[1], Port: 8848, // IPVS_SYNC_PORT
		Group: netip.AddrFrom4([4]byte{224, 0, 0, 81})} // IP_VS_SYNC_GROUP
	st := &syncState{n: k}
	for i := 2; i < len(k.words); i++ {
		w := k.words[i]
		val := func() (string, bool) {
			if i+1 >= len(k.words) {
				p.errorf(k, "missing value after %q", w)
				return "", false
			}
			i++
			return k.words[i], true
		}
		switch w {
		case "inst":
			if v, ok := val(); ok {
				sd.Instance = v
			}
		case "id":
			if _, ok := val(); ok {
				if v, ok := p.uintArg(k, i, 0, 255); ok {
					sd.SyncID, st.idSet = uint8(v), true
				}
			}
		case "maxlen":
			// 65507: the largest UDP payload over IPv4.
			if _, ok := val(); ok {
				if v, ok := p.uintArg(k, i, 1, 65507); ok {
					sd.MaxLen = int(v)
				}
			}
		case "port":
			if _, ok := val(); ok {
				if v, ok := p.uintArg(k, i, 1, 65535); ok {
					sd.Port = uint16(v)
				}
			}
		case "ttl":
			if _, ok := val(); ok {
				if v, ok := p.uintArg(k, i, 1, 255); ok {
					sd.TTL = int(v)
				}
			}
		case "group":
			if _, ok := val(); ok {
				if a, ok := p.addrArg(k, i); ok {
					if !a.IsMulticast() {
						p.errorf(k, "sync group %s is not a multicast address", a)
					} else {
						sd.Group = a
					}
				}
			}
		default:
			if sd.Instance == "" && i == 2 {
				sd.Instance = w // the "inst" word may be omitted
				continue
			}
			p.errorf(k, "unknown parameter %q", w)
		}
	}
	if p.cfg.Global.LVSSyncDaemon != nil {
		p.warnf(k, "lvs_sync_daemon given again, replacing the earlier one")
	}
	p.cfg.Global.LVSSyncDaemon = sd
	p.sync = st
}

// lvsTimeouts parses lvs_timeouts [tcp S] [tcpfin S] [udp S].
func (p *parser) lvsTimeouts(k *node) {
	if len(k.words) < 3 {
		p.errorf(k, "at least one of tcp, tcpfin or udp with a value is needed")
		return
	}
	t := &p.cfg.Global.LVSTimeouts
	for i := 1; i < len(k.words); i += 2 {
		w := k.words[i]
		if i+1 >= len(k.words) {
			p.errorf(k, "missing value after %q", w)
			return
		}
		// keepalived's LVS_MAX_TIMEOUT: 31 days.
		v, ok := p.uintArg(k, i+1, 1, 86400*31)
		if !ok {
			continue
		}
		d := time.Duration(v) * time.Second
		switch w {
		case "tcp":
			t.TCP = d
		case "tcpfin":
			t.TCPFin = d
		case "udp":
			t.UDP = d
		default:
			p.errorf(k, "unknown timeout %q: expected tcp, tcpfin or udp", w)
		}
	}
}

// trackFile parses track_file NAME { file PATH; weight N [reverse]; init_file [V] [overwrite] }.
func (p *parser) trackFile(n *node) {
	name, ok := p.arg(n, 1)
	if !ok || !p.needBlock(n) {
		return
	}
	tf := TrackFile{Pos: n.pos, Name: name, Weight: 1}
	for _, k := range n.kids {
		if p.noBlock(k) {
			continue
		}
		switch k.kw() {
		case "file":
			tf.Path, _ = p.str(k)
		case "weight":
			if v, ok := p.intArg(k, 1, -2147483647, 2147483647); ok {
				tf.Weight = int(v)
			}
			if len(k.words) > 2 {
				if k.words[2] == "reverse" {
					tf.Reverse = true
				} else {
					p.errorf(k, "unknown parameter %q", k.words[2])
				}
			}
		case "init_file":
			tf.InitFile = true
			for _, w := range k.words[1:] {
				if w == "overwrite" {
					tf.Overwrite = true
					continue
				}
				if v, ok := p.intArg(k, indexOf(k.words, w), -2147483647, 2147483647); ok {
					tf.InitValue = int(v)
				}
			}
		default:
			p.unknown(k)
		}
	}
	if tf.Path == "" {
		p.warnf(n, "track_file %s has no file - removing", name)
		return
	}
	for _, o := range p.cfg.TrackFiles {
		if o.Name == name {
			p.errorf(n, "track_file %s is already defined at %s", name, o.Pos)
			return
		}
	}
	p.cfg.TrackFiles = append(p.cfg.TrackFiles, tf)
}

func indexOf(w []string, s string) int {
	for i, x := range w {
		if x == s {
			return i
		}
	}
	return -1
}

func (p *parser) ssl(n *node) {
	if !p.needBlock(n) {
		return
	}
	s := &SSL{}
	for _, k := range n.kids {
		if p.noBlock(k) {
			continue
		}
		switch k.kw() {
		case "password":
			s.Password, _ = p.str(k)
		case "ca":
			s.CA, _ = p.str(k)
		case "certificate":
			s.Certificate, _ = p.str(k)
		case "key":
			s.Key, _ = p.str(k)
		default:
			p.unknown(k)
		}
	}
	if p.cfg.SSL != nil {
		p.warnf(n, "SSL context already specified - replacing")
	}
	p.cfg.SSL = s
}
