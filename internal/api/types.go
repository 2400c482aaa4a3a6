package api

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golvs/internal/ipvsadm"
	"golvs/internal/service"
)

// ServiceSpec is the body of POST /v1/services: the service to add and
// its configuration (a full specification: what ipvsadm -A sends).
type ServiceSpec struct {
	Key    Key           `json:"key"`
	Config ServiceConfig `json:"config"`
}

// DestSpec is the body of POST /v1/services/{svc}/dests.
type DestSpec struct {
	Addr   netip.Addr `json:"addr"`
	Port   uint16     `json:"port"`
	Config DestConfig `json:"config"`
}

// Timeouts is the body of GET and PUT /v1/timeouts, in seconds; in a PUT
// 0 leaves a timeout unchanged (ipvsadm --set).
type Timeouts = ipvsadm.TimeoutEntry

// Settings are the sysctls of /proc/sys/net/ipv4/vs that change
// per-packet decisions (engine.Settings), the body of GET and PUT
// /v1/settings. A PUT gives all of them.
type Settings struct {
	ExpireNodestConn        bool  `json:"expire_nodest_conn"`
	ExpireQuiescentTemplate bool  `json:"expire_quiescent_template"`
	ConnReuseMode           uint8 `json:"conn_reuse_mode"`
	SecureTCP               bool  `json:"secure_tcp"`
	SloppyTCP               bool  `json:"sloppy_tcp"`
	SloppySCTP              bool  `json:"sloppy_sctp"`
}

// CommandsRequest is the body of POST /v1/commands: parsed ipvsadm
// commands (see Command), applied one after the
// other as ipvsadm -R applies its lines: a failure does not stop the
// following commands.
type CommandsRequest struct {
	Commands []Command `json:"commands"`
}

// CommandsResponse is the answer to POST /v1/commands: one result per
// command, in order. Error is set when the changes were applied but not
// saved (the response's status is then 500).
type CommandsResponse struct {
	Results []Result `json:"results"`
	Error   *Error   `json:"error,omitempty"`
}

// Result is the outcome of one command: no Error when it succeeded.
type Result struct {
	Error *Error `json:"error,omitempty"`
}

// Service identifiers in paths ({svc}):
//
//	tcp:198.18.0.1:80        TCP service (also udp:, sctp:)
//	udp:[2001:db8::1]:53     IPv6: the address in brackets
//	fwmark:7                 IPv4 firewall-mark service
//	fwmark6:7                IPv6 firewall-mark service
//
// and of real servers ({dest}): 198.19.0.1:80 or [2001:db8::10]:80.

// ServiceID returns the path identifier of a service.
func ServiceID(k service.Key) string {
	if k.IsFWMark() {
		if k.Family == service.IPv6 {
			return "fwmark6:" + strconv.FormatUint(uint64(k.FWMark), 10)
		}
		return "fwmark:" + strconv.FormatUint(uint64(k.FWMark), 10)
	}
	var p string
	switch k.Proto {
	case service.ProtoTCP:
		p = "tcp"
	case service.ProtoUDP:
		p = "udp"
	case service.ProtoSCTP:
		p = "sctp"
	default:
		p = strconv.Itoa(int(k.Proto))
	}
	return p + ":" + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// ParseServiceID parses a path identifier of a service (see ServiceID).
func ParseServiceID(s string) (service.Key, error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return service.Key{}, fmt.Errorf("service %q: want PROTO:ADDR:PORT or fwmark:MARK", s)
	}
	switch kind {
	case "fwmark", "fwmark6":
		m, err := strconv.ParseUint(rest, 10, 32)
		if err != nil || m == 0 {
			return service.Key{}, fmt.Errorf("service %q: firewall mark must be 1 to 4294967295", s)
		}
		fam := service.IPv4
		if kind == "fwmark6" {
			fam = service.IPv6
		}
		return service.Key{Family: fam, FWMark: uint32(m)}, nil
	}
	var proto uint8
	switch kind {
	case "tcp":
		proto = service.ProtoTCP
	case "udp":
		proto = service.ProtoUDP
	case "sctp":
		proto = service.ProtoSCTP
	default:
		return service.Key{}, fmt.Errorf("service %q: unknown protocol %q (tcp, udp, sctp, fwmark, fwmark6)", s, kind)
	}
	ap, err := netip.ParseAddrPort(rest)
	if err != nil {
		return service.Key{}, fmt.Errorf("service %q: %w", s, err)
	}
	a := ap.Addr().Unmap()
	if a.Zone() != "" {
		return service.Key{}, fmt.Errorf("service %q: zones are not allowed", s)
	}
	return service.Key{Family: service.FamilyOf(a), Proto: proto, Addr: a, Port: ap.Port()}, nil
}

// DestID returns the path identifier of a real server.
func DestID(addr netip.Addr, port uint16) string {
	return netip.AddrPortFrom(addr, port).String()
}

// ParseDestID parses a path identifier of a real server.
func ParseDestID(s string) (netip.Addr, uint16, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("real server %q: %w", s, err)
	}
	if ap.Addr().Zone() != "" {
		return netip.Addr{}, 0, fmt.Errorf("real server %q: zones are not allowed", s)
	}
	return ap.Addr().Unmap(), ap.Port(), nil
}
