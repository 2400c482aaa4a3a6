package api

import (
	"net/netip"

	"golvs/internal/ipvsadm"
	"golvs/internal/service"
)

// Command is the wire form of a parsed ipvsadm command (ipvsadm.Command):
// the same fields under stable lower-case names, zero values left out, so
// that a -R batch of thousands of commands stays small and quick to
// decode. FromCommand and Command.Parsed convert without loss.
type Command struct {
	Kind       ipvsadm.Kind   `json:"kind"`
	Options    ipvsadm.Option `json:"options,omitzero"`
	Service    Key            `json:"service,omitzero"`
	Config     ServiceConfig  `json:"config,omitzero"`
	Dest       netip.Addr     `json:"dest,omitzero"`
	DestPort   uint16         `json:"dest_port,omitzero"`
	DestConfig DestConfig     `json:"dest_config,omitzero"`
	List       ListOptions    `json:"list,omitzero"`
	Timeouts   TimeoutConfig  `json:"timeouts,omitzero"`
	Daemon     DaemonConfig   `json:"daemon,omitzero"`
}

// Key is the wire form of service.Key.
type Key struct {
	Family service.Family `json:"family,omitzero"`
	Proto  uint8          `json:"proto,omitzero"`
	Addr   netip.Addr     `json:"addr,omitzero"`
	Port   uint16         `json:"port,omitzero"`
	FWMark uint32         `json:"fwmark,omitzero"`
}

// ServiceConfig is the wire form of service.Config.
type ServiceConfig struct {
	Sched   string        `json:"sched,omitzero"`
	Flags   service.Flags `json:"flags,omitzero"`
	Timeout uint32        `json:"timeout,omitzero"`
	Netmask uint32        `json:"netmask,omitzero"`
	PE      string        `json:"pe,omitzero"`
}

// DestConfig is the wire form of service.DestConfig.
type DestConfig struct {
	Fwd        service.FwdMethod `json:"fwd,omitzero"`
	Weight     int32             `json:"weight,omitzero"`
	UThreshold uint32            `json:"u_threshold,omitzero"`
	LThreshold uint32            `json:"l_threshold,omitzero"`
	TunType    service.TunType   `json:"tun_type,omitzero"`
	TunPort    uint16            `json:"tun_port,omitzero"`
	TunFlags   service.TunFlags  `json:"tun_flags,omitzero"`
}

// ListOptions is the wire form of ipvsadm.ListOptions.
type ListOptions struct {
	Numeric        bool `json:"numeric,omitzero"`
	Connections    bool `json:"connections,omitzero"`
	Timeout        bool `json:"timeout,omitzero"`
	Daemon         bool `json:"daemon,omitzero"`
	Stats          bool `json:"stats,omitzero"`
	Rate           bool `json:"rate,omitzero"`
	Thresholds     bool `json:"thresholds,omitzero"`
	PersistentConn bool `json:"persistent_conn,omitzero"`
	TunInfo        bool `json:"tun_info,omitzero"`
	NoSort         bool `json:"nosort,omitzero"`
	Exact          bool `json:"exact,omitzero"`
}

// TimeoutConfig is the wire form of ipvsadm.TimeoutConfig.
type TimeoutConfig struct {
	TCP    uint32 `json:"tcp,omitzero"`
	TCPFin uint32 `json:"tcp_fin,omitzero"`
	UDP    uint32 `json:"udp,omitzero"`
}

// DaemonConfig is the wire form of ipvsadm.DaemonConfig.
type DaemonConfig struct {
	State          string     `json:"state,omitzero"`
	MCastInterface string     `json:"mcast_interface,omitzero"`
	SyncID         uint8      `json:"syncid,omitzero"`
	SyncMaxLen     uint16     `json:"sync_maxlen,omitzero"`
	MCastGroup     netip.Addr `json:"mcast_group,omitzero"`
	MCastPort      uint16     `json:"mcast_port,omitzero"`
	MCastTTL       uint8      `json:"mcast_ttl,omitzero"`
}

// FromCommand returns the wire form of c.
func FromCommand(c ipvsadm.Command) Command {
	return Command{
		Kind:       c.Kind,
		Options:    c.Options,
		Service:    Key(c.Service),
		Config:     ServiceConfig(c.Config),
		Dest:       c.Dest,
		DestPort:   c.DestPort,
		DestConfig: DestConfig(c.DestConfig),
		List:       ListOptions(c.List),
		Timeouts:   TimeoutConfig(c.Timeouts),
		Daemon:     DaemonConfig(c.Daemon),
	}
}

// Parsed returns the ipvsadm.Command that w stands for.
func (w Command) Parsed() ipvsadm.Command {
	return ipvsadm.Command{
		Kind:       w.Kind,
		Options:    w.Options,
		Service:    service.Key(w.Service),
		Config:     service.Config(w.Config),
		Dest:       w.Dest,
		DestPort:   w.DestPort,
		DestConfig: service.DestConfig(w.DestConfig),
		List:       ipvsadm.ListOptions(w.List),
		Timeouts:   ipvsadm.TimeoutConfig(w.Timeouts),
		Daemon:     ipvsadm.DaemonConfig(w.Daemon),
	}
}
