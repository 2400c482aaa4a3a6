package ipvsadm

import (
	"net/netip"

	"golvs/internal/estimator"
	"golvs/internal/service"
	"golvs/internal/stats"
)

// KernelVersion is the IPVS version the kernel reports and ipvsadm prints
// as "1.2.1" (IP_VS_VERSION_CODE 0x010201: one byte each for major, minor
// and patch; unchanged in the kernel since 2.6).
const KernelVersion uint32 = 0x010201

// DefaultConnTabSize is the number of buckets of the kernel's connection
// hash table with the default conn_tab_bits of 12 (2^12), the "size=" of
// the version line.
const DefaultConnTabSize uint32 = 4096

// State is everything a listing shows, as plain data: what ipvsadm reads
// from the kernel (IPVS_CMD_GET_INFO, GET_SERVICE with its destinations,
// GET_CONFIG, GET_DAEMON and /proc/net/ip_vs_conn). The control API fills
// it and returns it as its list response; List and Save format it.
//
// Slices are in kernel order: services in the kernel's table order,
// destinations most recently added first, connections in hash-table order.
// Listings sort services and destinations unless --nosort is given;
// connections are never sorted.
//
// A State is a value: the formatters read it and never modify it.
type State struct {
	// Version is the IPVS version code (KernelVersion), printed as
	// "%d.%d.%d" of its three low bytes.
	Version uint32 `json:"version"`
	// ConnTabSize is the number of buckets of the connection hash table.
	ConnTabSize uint32 `json:"conn_tab_size"`

	Services []ServiceEntry `json:"services"`
	Conns    []ConnEntry    `json:"conns,omitempty"`
	Timeouts TimeoutEntry   `json:"timeouts"`
	Daemons  []DaemonEntry  `json:"daemons,omitempty"`
}

// ServiceEntry is one virtual service as a listing shows it (libipvs
// ipvs_service_entry_t).
type ServiceEntry struct {
	// Key identifies the service; Family must be set (anything but
	// IPv6 is taken as IPv4). For fwmark services only FWMark and
	// Family are used (the kernel reports no protocol, address or port
	// for them).
	Key    service.Key    `json:"key"`
	Config service.Config `json:"config"`
	// Stats are the counters since the last zeroing; Rates the
	// estimator's current rates.
	Stats stats.Values    `json:"stats"`
	Rates estimator.Rates `json:"rates"`
	// Dests in kernel order (the most recently added first).
	Dests []DestEntry `json:"dests,omitempty"`
}

// DestEntry is one real server of a service (libipvs ipvs_dest_entry_t).
// Its address family is that of Addr (a tunnel destination may differ
// from its service's).
type DestEntry struct {
	Addr   netip.Addr         `json:"addr"`
	Port   uint16             `json:"port"`
	Config service.DestConfig `json:"config"`

	ActiveConns  uint32 `json:"active_conns"`  // ActiveConn column
	InactConns   uint32 `json:"inact_conns"`   // InActConn column
	PersistConns uint32 `json:"persist_conns"` // PersistConn column (templates)

	Stats stats.Values    `json:"stats"`
	Rates estimator.Rates `json:"rates"`
}

// ConnEntry is one entry of the connection table (a line of
// /proc/net/ip_vs_conn, which ipvsadm -c reformats).
type ConnEntry struct {
	// Proto is the IP protocol number: 6, 17 or 132, or 0 ("IP") for the
	// templates of fwmark services.
	Proto uint8 `json:"protocol"`
	// Expires is the time left on the entry's timer, in whole seconds.
	Expires uint32 `json:"expires"`
	// State is the state name as the kernel's ip_vs_state_name gives it
	// (proto.StateName): "ESTABLISHED", "UDP", "NONE", "ASSURED", ...
	State string `json:"state"`

	CAddr netip.Addr `json:"caddr"` // client
	CPort uint16     `json:"cport"`
	// VAddr is the virtual address. For the template of a fwmark service
	// (Proto 0) the kernel stores the mark there; leave VAddr zero and
	// set FWMark, and the listing shows the mark as the kernel does
	// (mark 1 as 0.0.0.1, or as 0:1:: for IPv6).
	VAddr netip.Addr `json:"vaddr,omitzero"`
	VPort uint16     `json:"vport"`
	DAddr netip.Addr `json:"daddr"` // real server; may differ in family (tunnels)
	DPort uint16     `json:"dport"`

	Template bool   `json:"template,omitempty"` // a persistence template (not printed as such)
	FWMark   uint32 `json:"fwmark,omitempty"`   // the packet's mark (skb->mark)

	// PEName and PEData are the persistence engine and its data (the SIP
	// Call-ID), shown with --persistent-conn when both are present.
	PEName string `json:"pe_name,omitempty"`
	PEData string `json:"pe_data,omitempty"`
}

// TimeoutEntry holds the three timeouts ipvsadm --set changes, in seconds.
type TimeoutEntry struct {
	TCP    uint32 `json:"tcp"`     // TCP ESTABLISHED
	TCPFin uint32 `json:"tcp_fin"` // TCP FIN_WAIT
	UDP    uint32 `json:"udp"`
}

// Sync daemon roles, the values of DaemonEntry.State.
const (
	DaemonMaster = "master"
	DaemonBackup = "backup"
)

// DaemonEntry is one running connection-sync daemon (libipvs
// ipvs_daemon_t). Zero optional fields are not printed, as ipvsadm omits
// them.
type DaemonEntry struct {
	State      string     `json:"state"` // DaemonMaster or DaemonBackup
	MCastIfn   string     `json:"mcast_ifn"`
	SyncID     uint32     `json:"syncid"`
	SyncMaxLen uint16     `json:"sync_maxlen,omitempty"`
	MCastGroup netip.Addr `json:"mcast_group,omitzero"`
	MCastPort  uint16     `json:"mcast_port,omitempty"`
	MCastTTL   uint8      `json:"mcast_ttl,omitempty"`
}

// FWMarkAddr is the virtual address the kernel gives the template of a
// fwmark service (ip_vs_sched_persist: vaddr.ip = htonl(fwmark)): the mark
// in network byte order in the first four bytes of the address union.
func FWMarkAddr(fam service.Family, mark uint32) netip.Addr {
	b := [4]byte{byte(mark >> 24), byte(mark >> 16), byte(mark >> 8), byte(mark)}
	if fam == service.IPv6 {
		var a [16]byte
		copy(a[:], b[:])
		return netip.AddrFrom16(a)
	}
	return netip.AddrFrom4(b)
}

// findService returns the entry of s that the kernel's lookup for k finds
// (__ip_vs_service_find / __ip_vs_svc_fwm_find): by mark and family for
// fwmark keys, else by family, protocol, address and port.
func (s *State) findService(k service.Key) *ServiceEntry {
	for i := range s.Services {
		e := &s.Services[i].Key
		if k.FWMark != 0 {
			if e.FWMark == k.FWMark && e.Family == k.Family {
				return &s.Services[i]
			}
			continue
		}
		if e.FWMark == 0 && e.Family == k.Family && e.Proto == k.Proto && e.Addr == k.Addr && e.Port == k.Port {
			return &s.Services[i]
		}
	}
	return nil
}
