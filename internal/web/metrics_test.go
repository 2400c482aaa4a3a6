package web

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"golvs/internal/service"
)

// fullSource is the lab's control with every optional provider set.
func fullSource(l *lab) Source { return fullSourceAt(l, epoch) }

// fullSourceAt is fullSource with the providers' times around now.
func fullSourceAt(l *lab, now time.Time) Source {
	lat := NewHistogram(LatencyBuckets())
	for _, d := range []time.Duration{300 * time.Microsecond, 2 * time.Millisecond, 2 * time.Millisecond, 7 * time.Second} {
		lat.ObserveDuration(d)
	}
	batch := NewHistogram(BatchSizeBuckets())
	for _, n := range []float64{1, 1, 3, 32} {
		batch.Observe(n)
	}
	return Source{
		Control: l.ctl,
		Conns: func() ConnTable {
			return ConnTable{Conns: 12, Templates: 3, Limit: 1 << 20, Inserts: 40, Expired: 25, FullDrops: 2}
		},
		DataPlane: func() DataPlaneStats {
			return DataPlaneStats{
				Transmitted: 1000, ToHost: 50,
				Drops:      map[string]uint64{"no_route": 4, "malformed": 0},
				BatchSizes: batch.Snapshot(),
			}
		},
		Health: func() []RealServerHealth {
			return []RealServerHealth{
				{Service: webKey, Addr: rs1, Port: 80, Up: true, Checker: "HTTP_GET", LastResult: "HTTP status 200",
					LastCheck: now, LastChange: now.Add(-time.Hour), Checks: 4, Failures: 1, Latency: lat.Snapshot()},
				{Service: webKey, Addr: rs2, Port: 80, Up: true, Checker: "HTTP_GET", LastResult: "HTTP status 200", Checks: 4},
				// Down and taken out of the table by the checker, as
				// keepalived does without inhibit_on_failure.
				{Service: webKey, Addr: netip4("198.19.0.4"), Port: 80, Up: false, Checker: "HTTP_GET",
					LastResult: "connection refused", LastChange: now.Add(-time.Minute), Checks: 4, Failures: 4},
				// A provider's duplicate is dropped, not a failed scrape.
				{Service: webKey, Addr: rs2, Port: 80, Up: false, Checker: "HTTP_GET"},
				{Service: service.Key{FWMark: 1}, Addr: rs2, Port: 0, Up: true, Checker: "TCP_CHECK", Checks: 1},
			}
		},
		VRRP: func() []VRRPInstance {
			return []VRRPInstance{
				{Name: "VI_1", Interface: "eth0", VRID: 51, State: "MASTER", Priority: 150,
					VIPs: []netip.Addr{vip}, Transitions: 3, LastTransition: now.Add(-10 * time.Minute)},
				{Name: "VI_2", Interface: "eth1", VRID: 52, State: "BACKUP", Priority: 100},
			}
		},
		Sync: func() []SyncDaemon {
			return []SyncDaemon{{
				Role: SyncMaster, SyncID: 7, Interface: "eth0", Sent: 120, SentConns: 900,
				Rejected: map[string]uint64{"syncid": 2}, Lag: 250 * time.Millisecond, LastMessage: now,
			}}
		},
		Info: func() BuildInfo {
			return BuildInfo{Version: "v0.9.0", Revision: "abc123", GoVersion: "go1.26", Started: now.Add(-2 * time.Hour)}
		},
	}
}

// driveLab puts known traffic through the lab and runs the estimator to
// steady rates:
//
//	web 198.19.0.1:80  cps 10, in/out pps 100, in/out bps 10000
//	web 198.19.0.2:80  cps 5,  in/out pps 20,  in/out bps 30000
//	dns 198.19.0.1:53  cps 1,  in/out pps 1,   in/out bps 80
func driveLab(l *lab) {
	const intervals = 200 // estimator intervals: enough for the averages to settle
	// A rate of r per second is 2r per interval, 400r over 200 intervals.
	l.traffic(l.dest(webKey, rs1, 80), 400*10, 10, 100)
	l.traffic(l.dest(webKey, rs2, 80), 400*5, 4, 1500)
	l.traffic(l.dest(dnsKey, rs1, 53), 400*1, 1, 80)
	l.dest(webKey, rs1, 80).SetCounts(7, 3, false)
	l.dest(webKey, rs2, 80).SetCounts(2, 1, false)
	l.dest(markKey, rs2, 0).Bind(true, false)
	l.steady(intervals)
}

func scrape(t *testing.T, h http.Handler, hdr ...string) map[string]*dto.MetricFamily {
	t.Helper()
	res, body := get(t, h, "/metrics", hdr...)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", res.Status, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// find returns the metric of family name whose labels include want.
func find(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric family %s", name)
	}
	var found *dto.Metric
	for _, m := range f.Metric {
		ok := true
		for k, v := range want {
			has := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					has = true
				}
			}
			// An empty label value is the absent label.
			if !has && v != "" {
				ok = false
			}
		}
		if ok {
			if found != nil {
				t.Fatalf("%s%v matches more than one series", name, want)
			}
			found = m
		}
	}
	if found == nil {
		t.Fatalf("no series %s%v in\n%v", name, want, f)
	}
	return found
}

func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	m := find(t, fams, name, labels)
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s is neither a counter nor a gauge", name)
	return 0
}

var (
	webLabels = map[string]string{"service": "TCP 198.18.0.10:80", "protocol": "tcp", "vip": "198.18.0.10", "port": "80", "fwmark": "", "scheduler": "wlc"}
	rs1Labels = with(webLabels, "server", "198.19.0.1:80", "method", "masq")
	rs2Labels = with(webLabels, "server", "198.19.0.2:80", "method", "masq")
	rs3Labels = with(webLabels, "server", "198.19.0.3:80", "method", "masq")
)

func with(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestMetricsScrape(t *testing.T) {
	l := newLab(t)
	driveLab(l)
	h := NewHandler(fullSource(l), Options{Now: l.Now})
	fams := scrape(t, h)

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		// Counters: what ipvsadm -Ln --stats shows.
		{"golvs_service_connections_total", webLabels, 6000},
		{"golvs_service_packets_in_total", webLabels, 4000*10 + 2000*4},
		{"golvs_service_packets_out_total", webLabels, 4000*10 + 2000*4},
		{"golvs_service_bytes_in_total", webLabels, 4000*10*100 + 2000*4*1500},
		{"golvs_service_bytes_out_total", webLabels, 4000*10*100 + 2000*4*1500},
		{"golvs_real_server_connections_total", rs1Labels, 4000},
		{"golvs_real_server_bytes_in_total", rs2Labels, 2000 * 4 * 1500},
		{"golvs_real_server_connections_total", rs3Labels, 0},
		{"golvs_connections_total", nil, 6400},
		{"golvs_packets_in_total", nil, 40000 + 8000 + 400},
		// Rates: what ipvsadm -Ln --rate shows (per second, bytes).
		{"golvs_service_connections_per_second", webLabels, 15},
		{"golvs_service_packets_in_per_second", webLabels, 120},
		{"golvs_service_packets_out_per_second", webLabels, 120},
		{"golvs_service_bytes_in_per_second", webLabels, 40000},
		{"golvs_service_bytes_out_per_second", webLabels, 40000},
		{"golvs_real_server_connections_per_second", rs1Labels, 10},
		{"golvs_real_server_packets_in_per_second", rs2Labels, 20},
		{"golvs_real_server_bytes_in_per_second", rs2Labels, 30000},
		{"golvs_connections_per_second", nil, 16},
		{"golvs_bytes_out_per_second", nil, 40080},
		// Connections and weights: ipvsadm -Ln.
		{"golvs_real_server_active_connections", rs1Labels, 7},
		{"golvs_real_server_inactive_connections", rs1Labels, 3},
		{"golvs_real_server_active_connections", rs2Labels, 2},
		{"golvs_real_server_weight", rs1Labels, 100},
		{"golvs_real_server_weight", rs2Labels, 50},
		{"golvs_real_server_weight", rs3Labels, 0},
		{"golvs_real_server_overloaded", rs2Labels, 0},
		{"golvs_service_real_servers", webLabels, 3},
		{"golvs_real_server_persistent_connections", map[string]string{"service": "FWM 1", "protocol": "", "vip": "", "port": "", "fwmark": "1", "scheduler": "sh", "server": "198.19.0.2:0", "method": "tunnel"}, 1},
		{"golvs_real_server_weight", map[string]string{"service": "TCP [2001:db8::10]:443", "vip": "2001:db8::10", "server": "[2001:db8:1::1]:443"}, 1},
		{"golvs_real_server_connections_total", map[string]string{"service": "UDP 198.18.0.10:53", "scheduler": "rr", "server": "198.19.0.1:53", "method": "route"}, 400},
		// Connection table.
		{"golvs_conntable_connections", nil, 12},
		{"golvs_conntable_templates", nil, 3},
		{"golvs_conntable_limit", nil, 1 << 20},
		{"golvs_conntable_inserts_total", nil, 40},
		{"golvs_conntable_expired_total", nil, 25},
		{"golvs_conntable_full_drops_total", nil, 2},
		// Data plane.
		{"golvs_datapath_transmitted_frames_total", nil, 1000},
		{"golvs_datapath_to_host_frames_total", nil, 50},
		{"golvs_datapath_drops_total", map[string]string{"reason": "no_route"}, 4},
		{"golvs_datapath_drops_total", map[string]string{"reason": "malformed"}, 0},
		// Health.
		{"golvs_real_server_up", map[string]string{"service": "TCP 198.18.0.10:80", "server": "198.19.0.1:80", "checker": "HTTP_GET"}, 1},
		{"golvs_real_server_up", map[string]string{"service": "TCP 198.18.0.10:80", "server": "198.19.0.4:80", "checker": "HTTP_GET"}, 0},
		{"golvs_real_server_up", map[string]string{"service": "TCP 198.18.0.10:80", "server": "198.19.0.2:80"}, 1}, // the first entry, not the duplicate
		{"golvs_real_server_up", map[string]string{"service": "FWM 1", "server": "198.19.0.2:0", "checker": "TCP_CHECK"}, 1},
		{"golvs_healthcheck_checks_total", map[string]string{"server": "198.19.0.4:80"}, 4},
		{"golvs_healthcheck_failures_total", map[string]string{"server": "198.19.0.4:80"}, 4},
		{"golvs_healthcheck_last_change_timestamp_seconds", map[string]string{"server": "198.19.0.4:80"}, float64(epoch.Add(-time.Minute).Unix())},
		// VRRP.
		{"golvs_vrrp_state", map[string]string{"instance": "VI_1", "interface": "eth0", "vrid": "51"}, 2},
		{"golvs_vrrp_state", map[string]string{"instance": "VI_2"}, 1},
		{"golvs_vrrp_priority", map[string]string{"instance": "VI_1"}, 150},
		{"golvs_vrrp_transitions_total", map[string]string{"instance": "VI_1"}, 3},
		{"golvs_vrrp_last_transition_timestamp_seconds", map[string]string{"instance": "VI_1"}, float64(epoch.Add(-10 * time.Minute).Unix())},
		// Sync.
		{"golvs_sync_messages_sent_total", map[string]string{"role": "master", "syncid": "7"}, 120},
		{"golvs_sync_connections_sent_total", map[string]string{"role": "master"}, 900},
		{"golvs_sync_messages_received_total", map[string]string{"role": "master"}, 0},
		{"golvs_sync_messages_rejected_total", map[string]string{"role": "master", "reason": "syncid"}, 2},
		{"golvs_sync_lag_seconds", map[string]string{"role": "master"}, 0.25},
		// Build.
		{"golvs_build_info", map[string]string{"version": "v0.9.0", "revision": "abc123", "goversion": "go1.26"}, 1},
		{"golvs_start_time_seconds", nil, float64(epoch.Add(-2 * time.Hour).Unix())},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s%v", tc.name, tc.labels), func(t *testing.T) {
			if got := value(t, fams, tc.name, tc.labels); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	// Types: counters end in _total, histograms are histograms.
	for name, f := range fams {
		if !strings.HasPrefix(name, "golvs_") {
			continue
		}
		isCounter := f.GetType() == dto.MetricType_COUNTER
		if isCounter != strings.HasSuffix(name, "_total") {
			t.Errorf("%s: type %v", name, f.GetType())
		}
	}
	for _, name := range []string{"golvs_healthcheck_latency_seconds", "golvs_datapath_batch_size"} {
		if fams[name].GetType() != dto.MetricType_HISTOGRAM {
			t.Errorf("%s: type %v, want histogram", name, fams[name].GetType())
		}
	}

	// The latency histogram of 198.19.0.1:80: 0.3 ms, 2 ms, 2 ms, 7 s.
	hg := find(t, fams, "golvs_healthcheck_latency_seconds", map[string]string{"server": "198.19.0.1:80"}).GetHistogram()
	if hg.GetSampleCount() != 4 || math.Abs(hg.GetSampleSum()-7.0043) > 1e-9 {
		t.Errorf("latency count %d sum %v, want 4 and 7.0043", hg.GetSampleCount(), hg.GetSampleSum())
	}
	wantBuckets := map[float64]uint64{0.0005: 1, 0.001: 1, 0.0025: 3, 5: 3, 10: 4}
	for _, b := range hg.Bucket {
		if w, ok := wantBuckets[b.GetUpperBound()]; ok && b.GetCumulativeCount() != w {
			t.Errorf("latency bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
		}
	}
	// Health entries without latency samples have no histogram series.
	if n := len(fams["golvs_healthcheck_latency_seconds"].Metric); n != 1 {
		t.Errorf("%d latency series, want 1", n)
	}
	bg := find(t, fams, "golvs_datapath_batch_size", nil).GetHistogram()
	if bg.GetSampleCount() != 4 || bg.GetSampleSum() != 37 {
		t.Errorf("batch size count %d sum %v, want 4 and 37", bg.GetSampleCount(), bg.GetSampleSum())
	}

	// The runtime's own metrics come along.
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if _, ok := fams[name]; !ok && (name != "process_start_time_seconds" || hasProcFS()) {
			t.Errorf("no %s", name)
		}
	}
}

func hasProcFS() bool { _, err := os.Stat("/proc/self/stat"); return err == nil }

func netip4(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestMetricsZeroKeepsCounters: ipvsadm -Z zeroes what listings show, but
// Prometheus counters keep counting (a reset would look like a restart).
func TestMetricsZeroKeepsCounters(t *testing.T) {
	l := newLab(t)
	driveLab(l)
	h := NewHandler(Source{Control: l.ctl}, Options{Now: l.Now})
	if err := l.ctl.Zero(nil); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, h)
	if got := value(t, fams, "golvs_real_server_connections_total", rs1Labels); got != 4000 {
		t.Errorf("after -Z: connections_total %v, want 4000", got)
	}
	st := statusOf(t, h, "/api/status")
	if c := st.Services[0].Servers[0].Traffic.Conns; c != 0 {
		t.Errorf("after -Z: the page shows %d connections, want 0", c)
	}
}

// TestMetricsOptionalAbsent: without providers, their metrics are absent
// and the rest is served.
func TestMetricsOptionalAbsent(t *testing.T) {
	l := newLab(t)
	fams := scrape(t, NewHandler(Source{Control: l.ctl}, Options{Now: l.Now}))
	for _, name := range []string{"golvs_conntable_limit", "golvs_datapath_drops_total", "golvs_real_server_up", "golvs_vrrp_state", "golvs_sync_lag_seconds"} {
		if _, ok := fams[name]; ok {
			t.Errorf("%s present without its provider", name)
		}
	}
	if got := value(t, fams, "golvs_real_server_weight", rs1Labels); got != 100 {
		t.Errorf("weight %v", got)
	}
	if _, ok := fams["golvs_build_info"]; !ok {
		t.Error("no golvs_build_info")
	}
}

// TestMetricsChangeWithConfig: a deleted service's series disappear and
// an edit's new scheduler shows in the labels.
func TestMetricsChangeWithConfig(t *testing.T) {
	l := newLab(t)
	h := NewHandler(Source{Control: l.ctl}, Options{Now: l.Now})
	if err := l.ctl.DeleteService(dnsKey); err != nil {
		t.Fatal(err)
	}
	if err := l.ctl.EditService(webKey, service.Config{Sched: "rr"}); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, h)
	for _, m := range fams["golvs_service_connections_total"].Metric {
		for _, lp := range m.Label {
			if lp.GetName() == "service" && lp.GetValue() == "UDP 198.18.0.10:53" {
				t.Error("deleted service still exported")
			}
		}
	}
	value(t, fams, "golvs_service_connections_total", with(webLabels, "scheduler", "rr"))
}

// TestMetricsDocumented: every metric the collector can export is in
// docs/metrics.md, and every metric there exists.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 100)
	newCollector(Source{}, func() BuildInfo { return BuildInfo{} }).Describe(ch)
	close(ch)
	re := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	var names []string
	for d := range ch {
		m := re.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %v", d)
		}
		names = append(names, m[1])
	}
	for _, n := range names {
		if !strings.Contains(string(doc), "`"+n+"`") {
			t.Errorf("%s is not documented in docs/metrics.md", n)
		}
	}
	for _, m := range regexp.MustCompile("`(golvs_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1) {
		if !slices.Contains(names, m[1]) {
			t.Errorf("docs/metrics.md documents %s, which does not exist", m[1])
		}
	}
}

// TestCollectorPedantic: the collector's descriptions match what it
// collects (a pedantic registry checks every metric against them).
func TestCollectorPedantic(t *testing.T) {
	l := newLab(t)
	driveLab(l)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newCollector(fullSource(l), func() BuildInfo { return BuildInfo{Version: "v1"} }))
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}
