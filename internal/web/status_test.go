package web

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"golvs/internal/conntable"
	"golvs/internal/datapath"
	"golvs/internal/engine"
	"golvs/internal/estimator"
	"golvs/internal/service"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func statusOf(t *testing.T, h http.Handler, target string) *Status {
	t.Helper()
	res, body := get(t, h, target)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", target, res.Status, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var st Status
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("decode %s: %v\n%s", target, err, body)
	}
	return &st
}

// TestStatusGolden compares /api/status of the lab with every provider set
// to testdata/status.json (regenerate with -update, then read the diff).
func TestStatusGolden(t *testing.T) {
	l := newLab(t)
	h := NewHandler(fullSource(l), Options{Now: l.Now})
	driveLab(l)
	_, body := get(t, h, "/api/status")
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, []byte(body), "", "  "); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "status.json")
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(string(want), pretty.String()); d != "" {
		t.Errorf("/api/status differs from %s (-want +got):\n%s", golden, d)
	}
}

// TestStatusContent checks what a person reads on the page.
func TestStatusContent(t *testing.T) {
	l := newLab(t)
	h := NewHandler(fullSource(l), Options{Now: l.Now})
	driveLab(l)
	st := statusOf(t, h, "/api/status")

	var names []string
	for _, s := range st.Services {
		names = append(names, s.Name)
	}
	// ipvsadm -Ln's order, then the services only checkers know.
	wantNames := []string{"TCP 198.18.0.10:80", "UDP 198.18.0.10:53", "TCP [2001:db8::10]:443", "FWM 1"}
	if d := cmp.Diff(wantNames, names); d != "" {
		t.Errorf("services (-want +got):\n%s", d)
	}
	web := st.Services[0]
	if web.ID != "tcp:198.18.0.10:80" || web.Scheduler != "wlc" || !web.InTable || web.Protocol != "tcp" || web.VIP != "198.18.0.10" || web.Port != 80 {
		t.Errorf("web service: %+v", web)
	}
	if web.Traffic.CPS != 15 || web.Traffic.InPPS != 120 || web.Traffic.InBPS != 40000 || web.Traffic.Conns != 6000 {
		t.Errorf("web traffic: %+v", web.Traffic)
	}
	var servers []string
	for _, s := range web.Servers {
		servers = append(servers, s.Server)
	}
	if d := cmp.Diff([]string{"198.19.0.1:80", "198.19.0.2:80", "198.19.0.3:80", "198.19.0.4:80"}, servers); d != "" {
		t.Errorf("web's real servers (-want +got):\n%s", d)
	}
	r1 := web.Servers[0]
	if r1.Method != "masq" || r1.Weight != 100 || r1.ActiveConns != 7 || r1.InactConns != 3 || r1.Traffic.CPS != 10 || !r1.InTable {
		t.Errorf("198.19.0.1:80: %+v", r1)
	}
	if r1.Health == nil || !r1.Health.Up || r1.Health.Checker != "HTTP_GET" || r1.Health.LastResult != "HTTP status 200" {
		t.Errorf("198.19.0.1:80 health: %+v", r1.Health)
	}
	if got, want := r1.Health.MeanLatency, 7.0043/4; got != want {
		t.Errorf("mean latency %v, want %v", got, want)
	}
	if r3 := web.Servers[2]; r3.Health != nil || r3.Weight != 0 {
		t.Errorf("198.19.0.3:80 (quiesced, unchecked): %+v", r3)
	}
	if r4 := web.Servers[3]; r4.InTable || r4.Health == nil || r4.Health.Up || r4.Health.LastResult != "connection refused" {
		t.Errorf("198.19.0.4:80 (down, out of the table): %+v", r4)
	}
	if d := cmp.Diff([]string{"ops"}, st.Services[1].Flags); d != "" {
		t.Errorf("dns flags (-want +got):\n%s", d)
	}
	fwm := st.Services[3]
	if fwm.ID != "fwmark:1" || fwm.FWMark != 1 || fwm.Scheduler != "sh" || fwm.Servers[0].Method != "tunnel" || fwm.Servers[0].PersistConns != 1 {
		t.Errorf("FWM 1: %+v", fwm)
	}
	if d := cmp.Diff([]string{"sh-port", "persistent 300"}, fwm.Flags); d != "" {
		t.Errorf("FWM 1 flags (-want +got):\n%s", d)
	}
	if fwm.Servers[0].Health == nil || fwm.Servers[0].Health.Checker != "TCP_CHECK" {
		t.Errorf("FWM 1 health (the provider's key had no family): %+v", fwm.Servers[0].Health)
	}
	if st.Totals.CPS != 16 || st.Totals.Conns != 6400 {
		t.Errorf("totals %+v", st.Totals)
	}
	if st.ConnTable == nil || st.ConnTable.Limit != 1<<20 || st.DataPlane == nil || st.DataPlane.Dropped != 4 {
		t.Errorf("conntable %+v dataplane %+v", st.ConnTable, st.DataPlane)
	}
	if len(st.VRRP) != 2 || st.VRRP[0].State != "MASTER" || st.VRRP[0].VIPs[0] != "198.18.0.10" {
		t.Errorf("vrrp %+v", st.VRRP)
	}
	if len(st.Sync) != 1 || st.Sync[0].Lag != 0.25 || st.Sync[0].Rejected["syncid"] != 2 {
		t.Errorf("sync %+v", st.Sync)
	}
	if st.Version != "v0.9.0" || st.SampleInterval != 2 {
		t.Errorf("version %q interval %v", st.Version, st.SampleInterval)
	}
}

// TestStatusHealthOnlyService: a service that only a checker knows (not
// in the table) is listed after the others.
func TestStatusHealthOnlyService(t *testing.T) {
	l := newLab(t)
	other := service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: vip, Port: 8080}
	src := Source{Control: l.ctl, Health: func() []RealServerHealth {
		return []RealServerHealth{{Service: other, Addr: rs1, Port: 8080, Checker: "TCP_CHECK", LastResult: "timeout"}}
	}}
	st := statusOf(t, NewHandler(src, Options{Now: l.Now}), "/api/status")
	last := st.Services[len(st.Services)-1]
	if last.Name != "TCP 198.18.0.10:8080" || last.InTable || len(last.Servers) != 1 || last.Servers[0].Health.Up {
		t.Errorf("health-only service: %+v", last)
	}
}

func TestStatusEmpty(t *testing.T) {
	l := newLab(t)
	l.ctl.Flush()
	_, body := get(t, NewHandler(Source{Control: l.ctl}, Options{Now: func() time.Time { return epoch }}), "/api/status")
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	// The page iterates services: an empty list, not null.
	if svcs, ok := raw["services"].([]any); !ok || len(svcs) != 0 {
		t.Errorf("services: %#v", raw["services"])
	}
	for _, k := range []string{"conntable", "dataplane", "vrrp", "sync"} {
		if _, ok := raw[k]; ok {
			t.Errorf("%s present without its provider", k)
		}
	}
}

// TestStatusHistory: samples are taken at most once per sampling interval
// (by Sample or by requests), kept 150 deep, given after ?since=, and
// dropped with their service.
func TestStatusHistory(t *testing.T) {
	l := newLab(t)
	h := NewHandler(Source{Control: l.ctl}, Options{Now: l.Now})
	d := l.dest(webKey, rs1, 80)

	h.Sample()
	h.Sample() // too soon: ignored
	st := statusOf(t, h, "/api/status")
	if n := len(st.Services[0].History.T); n != 1 {
		t.Fatalf("%d samples after two Samples and a request in the same instant, want 1", n)
	}
	// 200 intervals with a growing rate: the ring keeps the last 150.
	for i := range 200 {
		l.traffic(d, 2*i, 1, 100) // i connections per second
		l.steady(1)
		h.Sample()
	}
	st = statusOf(t, h, "/api/status")
	hist := st.Services[0].History
	if len(hist.T) != historyLen || len(hist.CPS) != historyLen || len(hist.OutBPS) != historyLen {
		t.Fatalf("history of %d samples, want %d", len(hist.T), historyLen)
	}
	for i := 1; i < len(hist.T); i++ {
		if got := hist.T[i] - hist.T[i-1]; got != estimator.Interval.Milliseconds() {
			t.Fatalf("samples %d and %d are %d ms apart", i-1, i, got)
		}
	}
	if hist.T[len(hist.T)-1] != l.Now().UnixMilli() {
		t.Errorf("last sample at %d, want now %d", hist.T[len(hist.T)-1], l.Now().UnixMilli())
	}
	if first, last := hist.CPS[0], hist.CPS[len(hist.CPS)-1]; first >= last || last < 150 {
		t.Errorf("cps from %d to %d: want a rising rate reaching about 199", first, last)
	}
	if len(st.TotalsHistory.T) != historyLen {
		t.Errorf("totals history of %d samples", len(st.TotalsHistory.T))
	}
	// The page asks only for what it lacks.
	since := hist.T[len(hist.T)-3]
	st = statusOf(t, h, "/api/status?since="+strconv.FormatInt(since, 10))
	if n := len(st.Services[0].History.T); n != 2 {
		t.Errorf("since the third last sample: %d samples, want 2", n)
	}
	if res, _ := get(t, h, "/api/status?since=yesterday"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("since=yesterday: %s", res.Status)
	}
	// A deleted service's history goes with it; re-added, it starts anew.
	if err := l.ctl.DeleteService(webKey); err != nil {
		t.Fatal(err)
	}
	l.steady(1)
	h.Sample()
	if err := l.ctl.AddService(webKey, service.Config{Sched: "rr"}); err != nil {
		t.Fatal(err)
	}
	l.steady(1)
	st = statusOf(t, h, "/api/status")
	if n := len(st.Services[0].History.T); n != 1 {
		t.Errorf("re-added service has %d samples, want 1", n)
	}
}

func TestHealthz(t *testing.T) {
	l := newLab(t)
	h := NewHandler(Source{Control: l.ctl, Info: func() BuildInfo { return BuildInfo{Version: "v1.2.3"} }}, Options{Token: "s3cret"})
	res, body := get(t, h, "/healthz")
	if res.StatusCode != http.StatusOK || body != `{"status":"ok","version":"v1.2.3"}`+"\n" {
		t.Errorf("/healthz: %s %q", res.Status, body)
	}
}

// TestProviders: the helpers lvsd plugs in read the engine's table and
// the data plane's workers.
func TestProviders(t *testing.T) {
	l := newLab(t)
	eng, err := engine.New(engine.Config{Control: l.ctl, Clock: l.clk, MaxConns: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if got := EngineConnTable(eng, 4096)(); got != (ConnTable{Limit: 4096}) {
		t.Errorf("empty table: %+v", got)
	}
	if got := EngineConnTable(eng, 0)().Limit; got != conntable.DefaultMax {
		t.Errorf("default limit %d, want %d", got, conntable.DefaultMax)
	}
	dp := SumDataPlane([]*datapath.Counters{new(datapath.Counters), new(datapath.Counters)})
	if len(dp.Drops) != int(datapath.NumReasons)-1 {
		t.Errorf("%d drop reasons, want every reason but none (%d)", len(dp.Drops), datapath.NumReasons-1)
	}
	for _, r := range []string{"no_route", "conn_table_full", "denied"} {
		if n, ok := dp.Drops[r]; !ok || n != 0 {
			t.Errorf("reason %s: %d, %v", r, n, ok)
		}
	}
	if _, ok := dp.Drops["none"]; ok {
		t.Error(`reason "none" is not a drop`)
	}
}
