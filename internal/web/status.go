package web

import (
	"net/netip"
	"slices"
	"time"

	"golvs/internal/api"
	"golvs/internal/estimator"
	"golvs/internal/service"
	"golvs/internal/stats"
)

// Status is the body of GET /api/status: everything the status page
// shows. Counters are since the last ipvsadm -Z (as ipvsadm --stats shows
// them); rates are the kernel estimator's, in the units of ipvsadm
// --rate (bps fields are bytes per second, as there).
type Status struct {
	Version  string    `json:"version"`
	Revision string    `json:"revision,omitempty"`
	Time     time.Time `json:"time"`
	Started  time.Time `json:"started,omitzero"`
	// SampleInterval is the time between two history samples, in
	// seconds.
	SampleInterval float64 `json:"sample_interval"`

	Totals        Traffic  `json:"totals"`
	TotalsHistory *History `json:"totals_history"`

	ConnTable *ConnTable       `json:"conntable,omitempty"`
	DataPlane *DataPlaneStatus `json:"dataplane,omitempty"`

	// Services in ipvsadm -Ln's order; services that only health
	// checkers know of (not in the table) come last, with InTable false.
	Services []ServiceStatus `json:"services"`

	VRRP []VRRPStatus `json:"vrrp,omitempty"`
	Sync []SyncStatus `json:"sync,omitempty"`
}

// Traffic are the five IPVS counters and their rates.
type Traffic struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"in_pkts"`
	OutPkts  uint64 `json:"out_pkts"`
	InBytes  uint64 `json:"in_bytes"`
	OutBytes uint64 `json:"out_bytes"`
	CPS      uint64 `json:"cps"`
	InPPS    uint64 `json:"in_pps"`
	OutPPS   uint64 `json:"out_pps"`
	InBPS    uint64 `json:"in_bps"`  // bytes per second
	OutBPS   uint64 `json:"out_bps"` // bytes per second
}

func traffic(v stats.Values, r estimator.Rates) Traffic {
	return Traffic{
		Conns: v.Conns, InPkts: v.InPkts, OutPkts: v.OutPkts, InBytes: v.InBytes, OutBytes: v.OutBytes,
		CPS: r.CPS, InPPS: r.InPPS, OutPPS: r.OutPPS, InBPS: r.InBPS, OutBPS: r.OutBPS,
	}
}

// History is a rate history in columns: T[i] (Unix milliseconds) is the
// time of the i-th sample of each rate, oldest first.
type History struct {
	T      []int64  `json:"t"`
	CPS    []uint64 `json:"cps"`
	InPPS  []uint64 `json:"in_pps"`
	OutPPS []uint64 `json:"out_pps"`
	InBPS  []uint64 `json:"in_bps"`
	OutBPS []uint64 `json:"out_bps"`
}

// ServiceStatus is one virtual service.
type ServiceStatus struct {
	// ID is the service's identifier in the control API's paths
	// ("tcp:198.18.0.10:80", "fwmark:1").
	ID string `json:"id"`
	// Name is the service as ipvsadm -Ln names it ("TCP 198.18.0.10:80",
	// "FWM 1").
	Name     string `json:"name"`
	Family   string `json:"family"`
	Protocol string `json:"protocol,omitempty"`
	VIP      string `json:"vip,omitempty"`
	Port     uint16 `json:"port,omitempty"`
	FWMark   uint32 `json:"fwmark,omitempty"`

	InTable   bool     `json:"in_table"`
	Scheduler string   `json:"scheduler,omitempty"`
	Flags     []string `json:"flags,omitempty"` // as ipvsadm -Ln prints them after the scheduler

	Traffic Traffic        `json:"traffic"`
	History *History       `json:"history"`
	Servers []ServerStatus `json:"servers"`
}

// ServerStatus is one real server of a service.
type ServerStatus struct {
	Server string `json:"server"` // "198.19.0.1:80"
	Addr   string `json:"addr"`
	Port   uint16 `json:"port"`
	// InTable is false for a real server that only its health checker
	// knows of (taken out of the table while down).
	InTable    bool   `json:"in_table"`
	Method     string `json:"method,omitempty"` // "masq", "route", "tunnel", "local", "bypass"
	Weight     int32  `json:"weight"`
	UThreshold uint32 `json:"upper_threshold,omitempty"`
	LThreshold uint32 `json:"lower_threshold,omitempty"`
	Overloaded bool   `json:"overloaded,omitempty"`

	ActiveConns  int32 `json:"active_conns"`
	InactConns   int32 `json:"inact_conns"`
	PersistConns int32 `json:"persist_conns"`

	Traffic Traffic       `json:"traffic"`
	Health  *HealthStatus `json:"health,omitempty"`
}

// HealthStatus is a real server's health as its checker sees it.
type HealthStatus struct {
	Up         bool      `json:"up"`
	Checker    string    `json:"checker,omitempty"`
	LastResult string    `json:"last_result,omitempty"`
	LastCheck  time.Time `json:"last_check,omitzero"`
	LastChange time.Time `json:"last_change,omitzero"`
	Checks     uint64    `json:"checks"`
	Failures   uint64    `json:"failures"`
	// MeanLatency is the mean duration of the checks in seconds (0: not
	// measured).
	MeanLatency float64 `json:"mean_latency,omitempty"`
}

// DataPlaneStatus are the data plane's frame counters.
type DataPlaneStatus struct {
	Transmitted uint64            `json:"transmitted"`
	ToHost      uint64            `json:"to_host"`
	Dropped     uint64            `json:"dropped"` // the sum of Drops
	Drops       map[string]uint64 `json:"drops,omitempty"`
}

// VRRPStatus is one VRRP instance.
type VRRPStatus struct {
	Name           string    `json:"name"`
	Interface      string    `json:"interface,omitempty"`
	VRID           uint8     `json:"vrid"`
	State          string    `json:"state"`
	Priority       int       `json:"priority"`
	SyncGroup      string    `json:"sync_group,omitempty"`
	VIPs           []string  `json:"vips,omitempty"`
	Transitions    uint64    `json:"transitions"`
	LastTransition time.Time `json:"last_transition,omitzero"`
}

// SyncStatus is one connection-synchronisation daemon.
type SyncStatus struct {
	Role          string            `json:"role"`
	SyncID        uint32            `json:"syncid"`
	Interface     string            `json:"interface,omitempty"`
	Sent          uint64            `json:"sent"`
	Received      uint64            `json:"received"`
	SentConns     uint64            `json:"sent_conns"`
	ReceivedConns uint64            `json:"received_conns"`
	Rejected      map[string]uint64 `json:"rejected,omitempty"`
	Lag           float64           `json:"lag"` // seconds
	LastMessage   time.Time         `json:"last_message,omitzero"`
}

// status builds the Status at now, with the history after since (Unix
// ms; 0 for all of it).
func (h *Handler) status(now time.Time, since int64) *Status {
	bi := h.buildInfo()
	st := &Status{
		Version:        bi.Version,
		Revision:       bi.Revision,
		Time:           now,
		Started:        bi.Started,
		SampleInterval: estimator.Interval.Seconds(),
		Services:       []ServiceStatus{},
	}
	ctl := h.src.Control

	// Health entries by service, then by server.
	type srvKey struct {
		a netip.Addr
		p uint16
	}
	health := make(map[service.Key]map[srvKey]*RealServerHealth)
	var healthOrder []service.Key // services in the order the provider gave them
	if h.src.Health != nil {
		hs := h.src.Health()
		for i := range hs {
			e := &hs[i]
			k := normKey(e.Service)
			m := health[k]
			if m == nil {
				m = make(map[srvKey]*RealServerHealth)
				health[k] = m
				healthOrder = append(healthOrder, k)
			}
			sk := srvKey{e.Addr.Unmap(), e.Port}
			if m[sk] == nil { // the first of duplicates, as the metrics
				m[sk] = e
			}
		}
	}

	var keys []service.Key
	if ctl != nil {
		t := ctl.Total()
		st.Totals = traffic(t.Read(), ctl.Rates(t))
		for _, s := range sortedServices(ctl.Snapshot().Services()) {
			k := normKey(s.Key)
			keys = append(keys, k)
			ss := serviceStatus(s.Key)
			ss.InTable = true
			ss.Scheduler = schedName(s.Config.Sched)
			ss.Flags = serviceFlags(s.Key, s.Config)
			ss.Traffic = traffic(s.Stats.Read(), ctl.Rates(s.Stats))
			hm := health[k]
			delete(health, k)
			for _, d := range sortedDests(s.Dests) {
				c := d.Config()
				sv := ServerStatus{
					Server:       serverName(d.Addr, d.Port),
					Addr:         d.Addr.String(),
					Port:         d.Port,
					InTable:      true,
					Method:       methodName(c.Fwd),
					Weight:       c.Weight,
					UThreshold:   c.UThreshold,
					LThreshold:   c.LThreshold,
					Overloaded:   d.Overloaded(),
					ActiveConns:  max(d.ActiveConns(), 0),
					InactConns:   max(d.InactConns(), 0),
					PersistConns: max(d.PersistConns(), 0),
					Traffic:      traffic(d.Stats.Read(), ctl.Rates(d.Stats)),
				}
				sk := srvKey{d.Addr, d.Port}
				if e := hm[sk]; e != nil {
					sv.Health = healthStatus(e)
					delete(hm, sk)
				}
				ss.Servers = append(ss.Servers, sv)
			}
			ss.Servers = append(ss.Servers, healthOnly(hm)...)
			st.Services = append(st.Services, ss)
		}
	}
	total, hist := h.hist.get(keys, since)
	st.TotalsHistory = total
	for i := range keys {
		st.Services[i].History = hist[i]
	}
	// Services only health checkers know of.
	for _, k := range healthOrder {
		hm, ok := health[k]
		if !ok {
			continue
		}
		ss := serviceStatus(k)
		ss.History = &History{}
		ss.Servers = healthOnly(hm)
		st.Services = append(st.Services, ss)
	}
	for i := range st.Services {
		if st.Services[i].Servers == nil {
			st.Services[i].Servers = []ServerStatus{}
		}
	}

	if h.src.Conns != nil {
		ct := h.src.Conns()
		st.ConnTable = &ct
	}
	if h.src.DataPlane != nil {
		d := h.src.DataPlane()
		ds := &DataPlaneStatus{Transmitted: d.Transmitted, ToHost: d.ToHost, Drops: d.Drops}
		for _, n := range d.Drops {
			ds.Dropped += n
		}
		st.DataPlane = ds
	}
	if h.src.VRRP != nil {
		for _, v := range h.src.VRRP() {
			vs := VRRPStatus{
				Name: v.Name, Interface: v.Interface, VRID: v.VRID, State: v.State, Priority: v.Priority,
				SyncGroup: v.SyncGroup, Transitions: v.Transitions, LastTransition: v.LastTransition,
			}
			for _, a := range v.VIPs {
				vs.VIPs = append(vs.VIPs, a.String())
			}
			st.VRRP = append(st.VRRP, vs)
		}
	}
	if h.src.Sync != nil {
		for _, s := range h.src.Sync() {
			st.Sync = append(st.Sync, SyncStatus{
				Role: s.Role, SyncID: s.SyncID, Interface: s.Interface,
				Sent: s.Sent, Received: s.Received, SentConns: s.SentConns, ReceivedConns: s.ReceivedConns,
				Rejected: s.Rejected, Lag: s.Lag.Seconds(), LastMessage: s.LastMessage,
			})
		}
	}
	return st
}

// serviceStatus fills the identity fields of a service's status.
func serviceStatus(k service.Key) ServiceStatus {
	ss := ServiceStatus{ID: api.ServiceID(k), Name: serviceName(k), Family: k.Family.String()}
	if k.IsFWMark() {
		ss.FWMark = k.FWMark
	} else {
		ss.Protocol = protoName(k.Proto)
		ss.VIP = k.Addr.String()
		ss.Port = k.Port
	}
	return ss
}

func healthStatus(e *RealServerHealth) *HealthStatus {
	hs := &HealthStatus{
		Up: e.Up, Checker: e.Checker, LastResult: e.LastResult,
		LastCheck: e.LastCheck, LastChange: e.LastChange,
		Checks: e.Checks, Failures: e.Failures,
	}
	if e.Latency.Count > 0 {
		hs.MeanLatency = e.Latency.Sum / float64(e.Latency.Count)
	}
	return hs
}

// healthOnly returns the real servers of m (not in the table), sorted.
func healthOnly[K comparable](m map[K]*RealServerHealth) []ServerStatus {
	var out []ServerStatus
	for _, e := range m {
		a := e.Addr.Unmap()
		out = append(out, ServerStatus{
			Server: serverName(a, e.Port), Addr: a.String(), Port: e.Port,
			Health: healthStatus(e),
		})
	}
	slices.SortFunc(out, func(x, y ServerStatus) int {
		ax, _ := netip.ParseAddr(x.Addr)
		ay, _ := netip.ParseAddr(y.Addr)
		if c := ax.Compare(ay); c != 0 {
			return c
		}
		return int(x.Port) - int(y.Port)
	})
	return out
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
