package web

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"golvs/internal/estimator"
	"golvs/internal/stats"
)

// namespace prefixes every metric (golvs_...).
const namespace = "golvs"

var (
	svcLabelNames  = []string{"service", "protocol", "vip", "port", "fwmark", "scheduler"}
	destLabelNames = append(append([]string(nil), svcLabelNames...), "server", "method")
	hcLabelNames   = []string{"service", "server", "checker"}
	vrrpLabelNames = []string{"instance", "interface", "vrid"}
	syncLabelNames = []string{"role", "syncid"}
)

// counterSet are the descriptors of the five IPVS counters and their
// five rates for one kind of object (service, real server, totals).
type counterSet struct {
	conns, inPkts, outPkts, inBytes, outBytes gaugeOrCounter
	cps, inPPS, outPPS, inBPS, outBPS         gaugeOrCounter
}

type gaugeOrCounter struct {
	d *prometheus.Desc
	t prometheus.ValueType
}

func newCounterSet(prefix, what string, labels []string) counterSet {
	c := func(name, help string) gaugeOrCounter {
		return gaugeOrCounter{prometheus.NewDesc(prefix+name, help+" "+what+".", labels, nil), prometheus.CounterValue}
	}
	g := func(name, help string) gaugeOrCounter {
		return gaugeOrCounter{prometheus.NewDesc(prefix+name, help+" "+what+
			" (the kernel's 2 s estimator, an exponentially weighted average over about 8 s, as ipvsadm --rate shows).", labels, nil), prometheus.GaugeValue}
	}
	return counterSet{
		conns:    c("connections_total", "Connections scheduled to"),
		inPkts:   c("packets_in_total", "Packets from clients to real servers of"),
		outPkts:  c("packets_out_total", "Packets from real servers to clients (NAT only) of"),
		inBytes:  c("bytes_in_total", "IP bytes from clients to real servers of"),
		outBytes: c("bytes_out_total", "IP bytes from real servers to clients (NAT only) of"),
		cps:      g("connections_per_second", "Connections per second scheduled to"),
		inPPS:    g("packets_in_per_second", "Packets per second from clients of"),
		outPPS:   g("packets_out_per_second", "Packets per second to clients of"),
		inBPS:    g("bytes_in_per_second", "IP bytes per second from clients of"),
		outBPS:   g("bytes_out_per_second", "IP bytes per second to clients of"),
	}
}

func (s *counterSet) describe(ch chan<- *prometheus.Desc) {
	for _, m := range s.all() {
		ch <- m.d
	}
}

func (s *counterSet) all() []gaugeOrCounter {
	return []gaugeOrCounter{s.conns, s.inPkts, s.outPkts, s.inBytes, s.outBytes, s.cps, s.inPPS, s.outPPS, s.inBPS, s.outBPS}
}

func (s *counterSet) collect(ch chan<- prometheus.Metric, v stats.Values, r estimator.Rates, labels []string) {
	vals := [...]uint64{v.Conns, v.InPkts, v.OutPkts, v.InBytes, v.OutBytes, r.CPS, r.InPPS, r.OutPPS, r.InBPS, r.OutBPS}
	for i, m := range s.all() {
		ch <- prometheus.MustNewConstMetric(m.d, m.t, float64(vals[i]), labels...)
	}
}

// collector is the Prometheus collector of a Source: it reads the source
// at each scrape and keeps nothing between scrapes.
type collector struct {
	src  Source
	info func() BuildInfo // never nil

	svc, dest, total counterSet
	svcDests         *prometheus.Desc

	destActive, destInact, destPersist, destWeight, destOverloaded *prometheus.Desc

	ctConns, ctTemplates, ctLimit, ctInserts, ctExpired, ctFull *prometheus.Desc

	dpTransmitted, dpToHost, dpDrops, dpBatch *prometheus.Desc

	hcUp, hcChecks, hcFailures, hcLastChange, hcLatency *prometheus.Desc

	vrrpState, vrrpPriority, vrrpTransitions, vrrpLast *prometheus.Desc

	syncSent, syncRecv, syncSentConns, syncRecvConns, syncRejected, syncLag *prometheus.Desc

	buildInfo, startTime *prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

func newCollector(src Source, info func() BuildInfo) *collector {
	n := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
	}
	return &collector{
		src:      src,
		info:     info,
		svc:      newCounterSet(namespace+"_service_", "the virtual service", svcLabelNames),
		dest:     newCounterSet(namespace+"_real_server_", "the real server", destLabelNames),
		total:    newCounterSet(namespace+"_", "all virtual services (the global ip_vs_stats)", nil),
		svcDests: n("service_real_servers", "Real servers in the table of the virtual service.", svcLabelNames),

		destActive:     n("real_server_active_connections", "Active connections of the real server (ipvsadm ActiveConn).", destLabelNames),
		destInact:      n("real_server_inactive_connections", "Inactive connections of the real server (ipvsadm InActConn).", destLabelNames),
		destPersist:    n("real_server_persistent_connections", "Persistence templates bound to the real server (ipvsadm --persistent-conn PersistConn).", destLabelNames),
		destWeight:     n("real_server_weight", "Weight of the real server (0: quiescent).", destLabelNames),
		destOverloaded: n("real_server_overloaded", "1 while the real server has reached its upper connection threshold (OVERLOAD), else 0.", destLabelNames),

		ctConns:     n("conntable_connections", "Connections in the connection table (templates excluded).", nil),
		ctTemplates: n("conntable_templates", "Persistence templates in the connection table.", nil),
		ctLimit:     n("conntable_limit", "Most entries (connections and templates) the connection table holds.", nil),
		ctInserts:   n("conntable_inserts_total", "Entries inserted into the connection table.", nil),
		ctExpired:   n("conntable_expired_total", "Entries removed from the connection table because their timer ran out.", nil),
		ctFull:      n("conntable_full_drops_total", "New connections refused because the connection table was full.", nil),

		dpTransmitted: n("datapath_transmitted_frames_total", "Frames the data path sent out (forwarded, rewritten or ICMP answers).", nil),
		dpToHost:      n("datapath_to_host_frames_total", "Frames the data path handed to the host's stack.", nil),
		dpDrops:       n("datapath_drops_total", "Frames the data path dropped or answered with an ICMP error, by reason.", []string{"reason"}),
		dpBatch:       n("datapath_batch_size", "Frames per batch a data-path worker processed.", nil),

		hcUp:         n("real_server_up", "1 if the health checker finds the real server up, 0 if down.", hcLabelNames),
		hcChecks:     n("healthcheck_checks_total", "Health checks run against the real server.", hcLabelNames),
		hcFailures:   n("healthcheck_failures_total", "Health checks of the real server that failed.", hcLabelNames),
		hcLastChange: n("healthcheck_last_change_timestamp_seconds", "Unix time of the real server's last up/down change (absent if it never changed).", hcLabelNames),
		hcLatency:    n("healthcheck_latency_seconds", "Duration of the health checks of the real server.", hcLabelNames),

		vrrpState:       n("vrrp_state", "State of the VRRP instance: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 4 STOP (-1 unknown).", vrrpLabelNames),
		vrrpPriority:    n("vrrp_priority", "Effective priority of the VRRP instance.", vrrpLabelNames),
		vrrpTransitions: n("vrrp_transitions_total", "State transitions of the VRRP instance.", vrrpLabelNames),
		vrrpLast:        n("vrrp_last_transition_timestamp_seconds", "Unix time of the VRRP instance's last transition (absent if none).", vrrpLabelNames),

		syncSent:      n("sync_messages_sent_total", "Connection-sync messages sent.", syncLabelNames),
		syncRecv:      n("sync_messages_received_total", "Connection-sync messages received and accepted.", syncLabelNames),
		syncSentConns: n("sync_connections_sent_total", "Connections carried by the sync messages sent.", syncLabelNames),
		syncRecvConns: n("sync_connections_received_total", "Connections carried by the sync messages accepted.", syncLabelNames),
		syncRejected:  n("sync_messages_rejected_total", "Connection-sync messages received and dropped, by reason.", append(append([]string(nil), syncLabelNames...), "reason")),
		syncLag:       n("sync_lag_seconds", "How far behind the sync daemon is (master: age of the oldest unsent update; backup: time since the last message).", syncLabelNames),

		buildInfo: n("build_info", "Always 1; the labels identify the lvsd binary.", []string{"version", "revision", "goversion"}),
		startTime: n("start_time_seconds", "Unix time at which lvsd started.", nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	c.svc.describe(ch)
	c.dest.describe(ch)
	c.total.describe(ch)
	for _, d := range []*prometheus.Desc{
		c.svcDests, c.destActive, c.destInact, c.destPersist, c.destWeight, c.destOverloaded,
		c.ctConns, c.ctTemplates, c.ctLimit, c.ctInserts, c.ctExpired, c.ctFull,
		c.dpTransmitted, c.dpToHost, c.dpDrops, c.dpBatch,
		c.hcUp, c.hcChecks, c.hcFailures, c.hcLastChange, c.hcLatency,
		c.vrrpState, c.vrrpPriority, c.vrrpTransitions, c.vrrpLast,
		c.syncSent, c.syncRecv, c.syncSentConns, c.syncRecvConns, c.syncRejected, c.syncLag,
		c.buildInfo, c.startTime,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Counters are the raw counts
// since each object was created (stats.Counters.Raw): ipvsadm -Z zeroes
// what listings show, not what Prometheus sees, so rate() is undisturbed.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	ctl := c.src.Control
	if ctl != nil {
		t := ctl.Total()
		c.total.collect(ch, t.Raw(), ctl.Rates(t), nil)
		for _, s := range ctl.Snapshot().Services() {
			sl := serviceLabelValues(s.Key, s.Config.Sched)
			c.svc.collect(ch, s.Stats.Raw(), ctl.Rates(s.Stats), sl)
			gauge(c.svcDests, float64(len(s.Dests)), sl...)
			for _, d := range s.Dests {
				dl := append(append(make([]string, 0, len(destLabelNames)), sl...), serverName(d.Addr, d.Port), methodName(d.Fwd()))
				c.dest.collect(ch, d.Stats.Raw(), ctl.Rates(d.Stats), dl)
				gauge(c.destActive, float64(max(d.ActiveConns(), 0)), dl...)
				gauge(c.destInact, float64(max(d.InactConns(), 0)), dl...)
				gauge(c.destPersist, float64(max(d.PersistConns(), 0)), dl...)
				gauge(c.destWeight, float64(d.Weight()), dl...)
				gauge(c.destOverloaded, b2f(d.Overloaded()), dl...)
			}
		}
	}
	if c.src.Conns != nil {
		t := c.src.Conns()
		gauge(c.ctConns, float64(t.Conns))
		gauge(c.ctTemplates, float64(t.Templates))
		gauge(c.ctLimit, float64(t.Limit))
		counter(c.ctInserts, t.Inserts)
		counter(c.ctExpired, t.Expired)
		counter(c.ctFull, t.FullDrops)
	}
	if c.src.DataPlane != nil {
		d := c.src.DataPlane()
		counter(c.dpTransmitted, d.Transmitted)
		counter(c.dpToHost, d.ToHost)
		for r, n := range d.Drops {
			counter(c.dpDrops, n, r)
		}
		c.histogram(ch, c.dpBatch, &d.BatchSizes)
	}
	if c.src.Health != nil {
		seen := make(map[[3]string]bool)
		for _, h := range c.src.Health() {
			l := [3]string{serviceName(normKey(h.Service)), serverName(h.Addr.Unmap(), h.Port), h.Checker}
			if seen[l] {
				continue // a provider's duplicate would fail the whole scrape
			}
			seen[l] = true
			gauge(c.hcUp, b2f(h.Up), l[:]...)
			counter(c.hcChecks, h.Checks, l[:]...)
			counter(c.hcFailures, h.Failures, l[:]...)
			if !h.LastChange.IsZero() {
				gauge(c.hcLastChange, unixSeconds(h.LastChange), l[:]...)
			}
			c.histogram(ch, c.hcLatency, &h.Latency, l[:]...)
		}
	}
	if c.src.VRRP != nil {
		seen := make(map[string]bool)
		for _, v := range c.src.VRRP() {
			if seen[v.Name] {
				continue
			}
			seen[v.Name] = true
			l := []string{v.Name, v.Interface, strconv.Itoa(int(v.VRID))}
			gauge(c.vrrpState, float64(vrrpStateCode(v.State)), l...)
			gauge(c.vrrpPriority, float64(v.Priority), l...)
			counter(c.vrrpTransitions, v.Transitions, l...)
			if !v.LastTransition.IsZero() {
				gauge(c.vrrpLast, unixSeconds(v.LastTransition), l...)
			}
		}
	}
	if c.src.Sync != nil {
		seen := make(map[[2]string]bool)
		for _, s := range c.src.Sync() {
			l := [2]string{s.Role, strconv.FormatUint(uint64(s.SyncID), 10)}
			if seen[l] {
				continue
			}
			seen[l] = true
			counter(c.syncSent, s.Sent, l[:]...)
			counter(c.syncRecv, s.Received, l[:]...)
			counter(c.syncSentConns, s.SentConns, l[:]...)
			counter(c.syncRecvConns, s.ReceivedConns, l[:]...)
			for r, n := range s.Rejected {
				counter(c.syncRejected, n, l[0], l[1], r)
			}
			gauge(c.syncLag, s.Lag.Seconds(), l[:]...)
		}
	}
	bi := c.info()
	gauge(c.buildInfo, 1, bi.Version, bi.Revision, bi.GoVersion)
	if !bi.Started.IsZero() {
		gauge(c.startTime, unixSeconds(bi.Started))
	}
}

func (c *collector) histogram(ch chan<- prometheus.Metric, d *prometheus.Desc, h *HistogramData, labels ...string) {
	if !h.valid() {
		return
	}
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b] = h.Counts[i]
	}
	ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets, labels...)
}

// vrrpStateCode numbers keepalived's state names as the vrrp package's
// State does (Init 0, Backup 1, Master 2, Fault 3, Stop 4).
func vrrpStateCode(s string) int {
	switch s {
	case "INIT":
		return 0
	case "BACKUP":
		return 1
	case "MASTER":
		return 2
	case "FAULT":
		return 3
	case "STOP":
		return 4
	}
	return -1
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
