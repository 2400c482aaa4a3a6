package nslab

import (
	"fmt"
	"strings"
)

// Health-check timing of every checker (keepalived's seconds): a
// stopped server leaves rotation within delay_loop × (retry + 1) +
// connect_timeout = 3 s, quick enough to watch, and the checks stay a
// few packets a second.
const (
	checkDelayLoop = 1
	checkTimeout   = 1
	checkRetry     = 1
	checkRetryWait = 1
)

// VRRP parameters (the classic keepalived sample's).
const (
	vrrpRouterID = 51  // virtual_router_id
	vrrpAdvert   = 1   // advert_int, seconds
	prioMaster   = 150 // director1
	prioBackup   = 100 // director2
)

// KeepalivedConf returns director i's (from 1) keepalived.conf: the
// VRRP instance (director1 the MASTER with priority 150, director2 the
// BACKUP with 100), the connection sync daemon on the LAN following the
// instance, and the four virtual servers with their checkers. The two
// directors' files differ only in router_id, state and priority, as a
// keepalived pair's do.
func KeepalivedConf(i int) string {
	state, prio := "MASTER", prioMaster
	if i != 1 {
		state, prio = "BACKUP", prioBackup
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# keepalived.conf of director%d, written by lvslab (lvslab down removes it).
#
# Client side %v, servers' LAN %v. The VRRP master holds the VIPs
# and %v, the NAT real servers' gateway, so that they move to the
# backup together.

global_defs {
    router_id director%d
    lvs_sync_daemon eth1 VI_1
}

vrrp_instance VI_1 {
    state %s
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int %d
    virtual_ipaddress {
`, i, FrontNet, LANNet, GatewayVIP, i, state, vrrpRouterID, prio, vrrpAdvert)
	for _, a := range vrrpAddrs {
		fmt.Fprintf(&b, "        %v/32 dev %s\n", a.Addr, a.Dev)
	}
	b.WriteString("    }\n}\n")
	for _, svc := range Services {
		b.WriteString("\n")
		b.WriteString(serviceComment(svc))
		fmt.Fprintf(&b, `virtual_server %v %d {
    delay_loop %d
    lvs_sched %s
    lvs_method %s
    protocol %s
`, svc.VIP, svc.Port, checkDelayLoop, svc.Sched, svc.Method, strings.ToUpper(svc.Proto))
		for r := 1; r <= numRS; r++ {
			fmt.Fprintf(&b, "    real_server %v %d {\n        weight 1\n", RSAddr(r), svc.RSPort)
			b.WriteString(checker(svc))
			b.WriteString("    }\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func serviceComment(svc Service) string {
	switch {
	case svc.Proto == "udp":
		return "# UDP echo by NAT; UDP_CHECK fails on the ICMP port unreachable of a stopped server.\n"
	case svc.Method == "NAT":
		return fmt.Sprintf("# NAT: the director rewrites %v to a real server's port %d and back.\n", svc.VAddr(), svc.RSPort)
	case svc.Method == "DR":
		return "# DR: the director rewrites only the MAC; the real servers hold the VIP and answer directly.\n"
	}
	return "# TUN: the director sends the packets inside IP-in-IP; the real servers answer directly.\n"
}

// checker is the real server's health checker block.
func checker(svc Service) string {
	timing := fmt.Sprintf("            connect_timeout %d\n            retry %d\n            delay_before_retry %d\n",
		checkTimeout, checkRetry, checkRetryWait)
	switch {
	case svc.Proto == "udp":
		return "        UDP_CHECK {\n" + timing + "        }\n"
	case svc.Method == "NAT":
		return "        HTTP_GET {\n            url {\n                path /\n                status_code 200\n            }\n" + timing + "        }\n"
	}
	return "        TCP_CHECK {\n" + timing + "        }\n"
}
