package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"golvs/internal/clock"
	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/ipvsadm"
	"golvs/internal/proto"
	"golvs/internal/service"
)

// harness is a Server over a fresh control and engine with a manual
// clock, counting saves.
type harness struct {
	t     *testing.T
	srv   *Server
	ctl   *control.Control
	eng   *engine.Engine
	clk   *clock.Manual
	saves int
	fail  error // returned by Persist when set
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewManual(time.Hour)}
	h.ctl = control.New(control.Config{Clock: h.clk})
	var err error
	h.eng, err = engine.New(engine.Config{Control: h.ctl, Clock: h.clk, MaxConns: 1024, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = New(Config{Control: h.ctl, Engine: h.eng, Clock: h.clk, Persist: func() error {
		if h.fail != nil {
			return h.fail
		}
		h.saves++
		return nil
	}})
	return h
}

// do sends a request with a body (a string is sent as is, anything else
// as JSON) and returns the status and the body.
func (h *harness) do(method, path string, body any) (int, string) {
	h.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		r = strings.NewReader(string(j))
	}
	req := httptest.NewRequest(method, path, r)
	w := httptest.NewRecorder()
	h.srv.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

// want checks a response's status and, for errors, its class.
func (h *harness) want(method, path string, body any, status int, class string) string {
	h.t.Helper()
	code, got := h.do(method, path, body)
	if code != status {
		h.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, code, status, got)
	}
	if class != "" {
		var eb ErrorBody
		if err := json.Unmarshal([]byte(got), &eb); err != nil {
			h.t.Fatalf("%s %s: error body %q: %v", method, path, got, err)
		}
		if eb.Error.Class != class || eb.Error.Message == "" {
			h.t.Fatalf("%s %s: error %+v, want class %s", method, path, eb.Error, class)
		}
	}
	return got
}

func (h *harness) state(query string) *ipvsadm.State {
	h.t.Helper()
	body := h.want("GET", "/v1/state"+query, nil, http.StatusOK, "")
	st := new(ipvsadm.State)
	if err := json.Unmarshal([]byte(body), st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

var (
	vip   = netip.MustParseAddr("198.18.0.1")
	rip1  = netip.MustParseAddr("198.19.0.1")
	rip2  = netip.MustParseAddr("198.19.0.2")
	vip6  = netip.MustParseAddr("2001:db8::1")
	tcp80 = service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: vip, Port: 80}
	svc80 = "/v1/services/tcp:198.18.0.1:80"
)

func TestEmptyState(t *testing.T) {
	h := newHarness(t)
	st := h.state("")
	want := &ipvsadm.State{
		Version: ipvsadm.KernelVersion, ConnTabSize: ipvsadm.DefaultConnTabSize,
		Services: []ipvsadm.ServiceEntry{},
		Timeouts: ipvsadm.TimeoutEntry{TCP: 900, TCPFin: 120, UDP: 300},
	}
	if diff := cmp.Diff(want, st, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestServices(t *testing.T) {
	h := newHarness(t)
	spec := ServiceSpec{Key: Key(tcp80), Config: ServiceConfig{Sched: "rr"}}
	code, _ := h.do("POST", "/v1/services", spec)
	if code != http.StatusCreated {
		t.Fatalf("add: %d", code)
	}
	h.want("POST", "/v1/services", spec, http.StatusConflict, ClassServiceExists)
	h.want("POST", "/v1/services", ServiceSpec{Key: Key{Family: 4, Proto: 6, Addr: vip, Port: 81}, Config: ServiceConfig{Sched: "nope"}},
		http.StatusUnprocessableEntity, ClassSchedNotFound)
	h.want("POST", "/v1/services", ServiceSpec{Key: Key{Family: 4, Proto: 6, Addr: vip6, Port: 81}, Config: ServiceConfig{Sched: "rr"}},
		http.StatusUnprocessableEntity, ClassInvalid)
	h.want("POST", "/v1/services", ServiceSpec{Key: Key{Family: 5, FWMark: 1}, Config: ServiceConfig{Sched: "rr"}},
		http.StatusUnprocessableEntity, ClassAFNoSupport)

	body := h.want("GET", svc80, nil, http.StatusOK, "")
	var e ipvsadm.ServiceEntry
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Key != tcp80 || e.Config.Sched != "rr" || e.Config.Netmask != 0xffffffff {
		t.Fatalf("get: %+v %v", e, err)
	}
	h.want("GET", "/v1/services/tcp:198.18.0.1:81", nil, http.StatusNotFound, ClassNoService)
	h.want("GET", "/v1/services/tcp:198.18.0.1", nil, http.StatusBadRequest, ClassBadRequest)
	h.want("GET", "/v1/services/icmp:198.18.0.1:1", nil, http.StatusBadRequest, ClassBadRequest)
	h.want("GET", "/v1/services/fwmark:0", nil, http.StatusBadRequest, ClassBadRequest)

	// Edit is a full re-specification.
	h.want("PUT", svc80, ServiceConfig{Sched: "wlc", Flags: service.FlagPersistent, Timeout: 60}, http.StatusNoContent, "")
	if s := h.ctl.Snapshot().Get(tcp80); s.Config.Sched != "wlc" || s.Config.Timeout != 60 {
		t.Errorf("after edit: %+v", s.Config)
	}
	h.want("PUT", "/v1/services/tcp:198.18.0.1:81", ServiceConfig{Sched: "wlc"}, http.StatusNotFound, ClassNoService)
	h.want("PUT", svc80, ServiceConfig{Sched: "nope"}, http.StatusUnprocessableEntity, ClassSchedNotFound)
	h.want("PUT", svc80, `{"sched":"rr","bogus":1}`, http.StatusBadRequest, ClassBadRequest)

	// fwmark services by family and mark.
	h.want("POST", "/v1/services", ServiceSpec{Key: Key{Family: service.IPv6, FWMark: 7}, Config: ServiceConfig{Sched: "rr"}}, http.StatusCreated, "")
	h.want("GET", "/v1/services/fwmark6:7", nil, http.StatusOK, "")
	h.want("GET", "/v1/services/fwmark:7", nil, http.StatusNotFound, ClassNoService)
	h.want("DELETE", "/v1/services/fwmark6:7", nil, http.StatusNoContent, "")

	h.want("DELETE", svc80, nil, http.StatusNoContent, "")
	h.want("DELETE", svc80, nil, http.StatusNotFound, ClassNoService)
	if h.saves != 5 {
		t.Errorf("%d saves, want 5 (add, edit, add, delete, delete: failures do not save)", h.saves)
	}
}

func TestDests(t *testing.T) {
	h := newHarness(t)
	h.want("POST", "/v1/services", ServiceSpec{Key: Key(tcp80), Config: ServiceConfig{Sched: "wrr"}}, http.StatusCreated, "")
	d1 := DestSpec{Addr: rip1, Port: 8080, Config: DestConfig{Fwd: service.Masq, Weight: 2}}
	code, _ := h.do("POST", svc80+"/dests", d1)
	if code != http.StatusCreated {
		t.Fatalf("add dest: %d", code)
	}
	h.want("POST", svc80+"/dests", d1, http.StatusConflict, ClassDestExists)
	h.want("POST", "/v1/services/tcp:198.18.0.1:81/dests", d1, http.StatusNotFound, ClassServiceUndef)
	h.want("POST", svc80+"/dests", DestSpec{Addr: rip2, Port: 80, Config: DestConfig{Weight: -1}}, http.StatusUnprocessableEntity, ClassRange)
	h.want("POST", svc80+"/dests", DestSpec{Addr: rip2, Port: 80, Config: DestConfig{Weight: 1, UThreshold: 1, LThreshold: 2}}, http.StatusUnprocessableEntity, ClassRange)
	h.want("POST", svc80+"/dests", DestSpec{Addr: netip.MustParseAddr("2001:db8::2"), Port: 80, Config: DestConfig{Fwd: service.Masq, Weight: 1}},
		http.StatusUnprocessableEntity, ClassAFNoSupport)
	h.want("POST", svc80+"/dests", DestSpec{Addr: netip.MustParseAddr("224.0.0.1"), Port: 80, Config: DestConfig{Weight: 1}}, http.StatusUnprocessableEntity, ClassInvalid)
	h.want("POST", svc80+"/dests", DestSpec{Addr: rip2, Port: 80, Config: DestConfig{Fwd: service.Tunnel, TunType: service.TunGUE, Weight: 1}},
		http.StatusUnprocessableEntity, ClassInvalid)
	h.want("POST", svc80+"/dests", DestSpec{Addr: rip2, Port: 80, Config: DestConfig{Fwd: service.Tunnel, TunType: 9, Weight: 1}},
		http.StatusUnprocessableEntity, ClassInvalid)
	h.want("POST", svc80+"/dests", `{"addr":"198.19.0.300","port":80}`, http.StatusBadRequest, ClassBadRequest)
	h.want("POST", svc80+"/dests", `{"addr":"198.19.0.3","port":70000}`, http.StatusBadRequest, ClassBadRequest)
	h.want("POST", svc80+"/dests", DestSpec{Addr: rip2, Port: 80, Config: DestConfig{Fwd: service.Route, Weight: 1}}, http.StatusCreated, "")

	// Kernel order: the last added first.
	st := h.state("")
	if got := st.Services[0].Dests; len(got) != 2 || got[0].Addr != rip2 || got[1].Addr != rip1 || got[1].Config.Weight != 2 {
		t.Fatalf("dests: %+v", got)
	}

	h.want("PUT", svc80+"/dests/198.19.0.1:8080", DestConfig{Fwd: service.Masq, Weight: 5}, http.StatusNoContent, "")
	if e, _ := h.srv.service(tcp80); e.Dests[1].Config.Weight != 5 {
		t.Errorf("edit: %+v", e.Dests[1])
	}
	h.want("PUT", svc80+"/dests/198.19.0.1:8081", DestConfig{Weight: 1}, http.StatusNotFound, ClassNoDest)
	h.want("PUT", "/v1/services/tcp:198.18.0.1:81/dests/198.19.0.1:8080", DestConfig{Weight: 1}, http.StatusNotFound, ClassServiceUndef)
	h.want("PUT", svc80+"/dests/198.19.0.1", DestConfig{Weight: 1}, http.StatusBadRequest, ClassBadRequest)
	h.want("DELETE", svc80+"/dests/198.19.0.1:8080", nil, http.StatusNoContent, "")
	h.want("DELETE", svc80+"/dests/198.19.0.1:8080", nil, http.StatusNotFound, ClassNoDest)
	if got := len(h.ctl.Trash()); got != 1 {
		t.Errorf("trash holds %d, want the deleted real server", got)
	}
	// IPv6 real servers in brackets.
	h.want("POST", "/v1/services", ServiceSpec{Key: Key{Family: 6, Proto: 17, Addr: vip6, Port: 53}, Config: ServiceConfig{Sched: "rr"}}, http.StatusCreated, "")
	h.want("POST", "/v1/services/udp:[2001:db8::1]:53/dests", DestSpec{Addr: netip.MustParseAddr("2001:db8::10"), Port: 53, Config: DestConfig{Weight: 1}}, http.StatusCreated, "")
	h.want("DELETE", "/v1/services/udp:[2001:db8::1]:53/dests/[2001:db8::10]:53", nil, http.StatusNoContent, "")
}

func TestZeroFlush(t *testing.T) {
	h := newHarness(t)
	h.want("POST", "/v1/services", ServiceSpec{Key: Key(tcp80), Config: ServiceConfig{Sched: "rr"}}, http.StatusCreated, "")
	h.want("POST", svc80+"/dests", DestSpec{Addr: rip1, Port: 80, Config: DestConfig{Fwd: service.Masq, Weight: 1}}, http.StatusCreated, "")
	w := h.eng.NewWorker(0)
	w.Begin()
	w.In(&engine.Packet{Proto: service.ProtoTCP, Src: netip.MustParseAddr("198.18.5.5"), SrcPort: 1234, Dst: vip, DstPort: 80, TCPFlags: 0x02, Len: 60})
	if got := h.state("").Services[0].Stats.Conns; got != 1 {
		t.Fatalf("conns %d before zeroing", got)
	}
	saves := h.saves
	h.want("POST", svc80+"/zero", nil, http.StatusNoContent, "")
	if st := h.state(""); st.Services[0].Stats.Conns != 0 || st.Services[0].Dests[0].Stats.InPkts != 0 {
		t.Errorf("after zero: %+v", st.Services[0])
	}
	h.want("POST", "/v1/services/tcp:198.18.0.1:81/zero", nil, http.StatusNotFound, ClassNoService)
	h.want("POST", "/v1/zero", nil, http.StatusNoContent, "")
	if h.saves != saves {
		t.Errorf("zeroing saved the state")
	}
	h.want("POST", "/v1/flush", nil, http.StatusNoContent, "")
	if n := h.ctl.Snapshot().Len(); n != 0 || h.saves != saves+1 {
		t.Errorf("after flush: %d services, %d saves", n, h.saves-saves)
	}
	h.want("GET", "/v1/flush", nil, http.StatusMethodNotAllowed, "")
	h.want("GET", "/v2/state", nil, http.StatusNotFound, "")
}

func TestTimeoutsSettings(t *testing.T) {
	h := newHarness(t)
	h.want("PUT", "/v1/timeouts", Timeouts{TCP: 100, UDP: 10}, http.StatusNoContent, "")
	body := h.want("GET", "/v1/timeouts", nil, http.StatusOK, "")
	if want := `{"tcp":100,"tcp_fin":120,"udp":10}`; strings.TrimSpace(body) != want {
		t.Errorf("timeouts %s, want %s", body, want)
	}
	h.want("PUT", "/v1/timeouts", Timeouts{TCP: 4000000000}, http.StatusUnprocessableEntity, ClassInvalid)
	h.want("PUT", "/v1/timeouts", `{"tcp":-1}`, http.StatusBadRequest, ClassBadRequest)
	if st := h.state(""); st.Timeouts != (ipvsadm.TimeoutEntry{TCP: 100, TCPFin: 120, UDP: 10}) {
		t.Errorf("state timeouts %+v", st.Timeouts)
	}

	body = h.want("GET", "/v1/settings", nil, http.StatusOK, "")
	var st Settings
	if err := json.Unmarshal([]byte(body), &st); err != nil || st != (Settings{ConnReuseMode: 1}) {
		t.Errorf("default settings %+v %v", st, err)
	}
	want := Settings{ExpireNodestConn: true, ExpireQuiescentTemplate: true, ConnReuseMode: 3, SecureTCP: true, SloppyTCP: true, SloppySCTP: true}
	h.want("PUT", "/v1/settings", want, http.StatusNoContent, "")
	if got := h.eng.Settings(); got != (engine.Settings{ExpireNodestConn: true, ExpireQuiescentTemplate: true, ConnReuseMode: 3, SecureTCP: true, SloppyTCP: true, SloppySCTP: true}) {
		t.Errorf("engine settings %+v", got)
	}
	if h.saves != 2 {
		t.Errorf("%d saves, want 2", h.saves)
	}
}

func TestDaemons(t *testing.T) {
	h := newHarness(t)
	h.want("POST", "/v1/daemons", ipvsadm.DaemonEntry{State: "backup", MCastIfn: "lo", SyncID: 3}, http.StatusCreated, "")
	h.want("POST", "/v1/daemons", ipvsadm.DaemonEntry{State: "backup", MCastIfn: "lo"}, http.StatusConflict, ClassDaemonExists)
	h.want("POST", "/v1/daemons", ipvsadm.DaemonEntry{State: "master", MCastIfn: "golvs-nosuch0"}, http.StatusUnprocessableEntity, ClassNoDevice)
	h.want("POST", "/v1/daemons", ipvsadm.DaemonEntry{State: "master", MCastIfn: "lo", MCastGroup: netip.MustParseAddr("198.18.0.1")}, http.StatusUnprocessableEntity, ClassInvalid)
	h.want("POST", "/v1/daemons", ipvsadm.DaemonEntry{State: "primary", MCastIfn: "lo"}, http.StatusBadRequest, ClassBadRequest)
	h.want("POST", "/v1/daemons", ipvsadm.DaemonEntry{State: "master", MCastIfn: "lo", SyncID: 256}, http.StatusBadRequest, ClassBadRequest)
	h.want("POST", "/v1/daemons", ipvsadm.DaemonEntry{State: "master", MCastIfn: "lo", SyncMaxLen: 100, MCastPort: 9000, MCastTTL: 3}, http.StatusCreated, "")
	body := h.want("GET", "/v1/daemons", nil, http.StatusOK, "")
	var got []ipvsadm.DaemonEntry
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	g := defaultSyncGroup
	// lo's MTU is 65536: the backup's buffer is the largest.
	want := []ipvsadm.DaemonEntry{
		{State: "master", MCastIfn: "lo", SyncMaxLen: 100, MCastGroup: g, MCastPort: 9000, MCastTTL: 3},
		{State: "backup", MCastIfn: "lo", SyncID: 3, SyncMaxLen: 65535 - 28, MCastGroup: g, MCastPort: 8848, MCastTTL: 1},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("daemons (-want +got):\n%s", diff)
	}
	h.want("DELETE", "/v1/daemons/master", nil, http.StatusNoContent, "")
	h.want("DELETE", "/v1/daemons/master", nil, http.StatusNotFound, ClassNoDaemon)
	h.want("DELETE", "/v1/daemons/primary", nil, http.StatusBadRequest, ClassBadRequest)
	if h.saves != 0 {
		t.Errorf("daemons saved the state")
	}
}

// mustParse parses an ipvsadm command line.
func mustParse(t testing.TB, line string) ipvsadm.Command {
	t.Helper()
	c, err := ipvsadm.Parse(strings.Fields(line))
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return c
}

func TestCommands(t *testing.T) {
	h := newHarness(t)
	lines := []string{
		"-A -t 198.18.0.1:80 -s rr",
		"-A -t 198.18.0.1:80 -s rr",
		"-a -t 198.18.0.1:80 -r 198.19.0.1 -m -w 2",
		"-a -t 198.18.0.2:80 -r 198.19.0.1",
		"-e -t 198.18.0.1:80 -r 198.19.0.9",
		"-A -u [2001:db8::1]:53 -s sh -b sh-port",
		"-a -u [2001:db8::1]:53 -r [2001:db8::10]:53 -i --tun-type gue --tun-port 6080",
		"-E -f 9 -s rr",
		"-D -t 198.18.0.9:80",
		"-d -t 198.18.0.1:80 -r 198.19.0.9",
		"-Z -t 198.18.0.1:80",
		"-Z -t 198.18.0.9:80",
		"--set 100 0 0",
		"--start-daemon master --mcast-interface lo",
		"--stop-daemon backup",
		"-a -t 198.18.0.1:80 -r 198.19.0.1 -w 2 -x 1 -y 2",
	}
	var req CommandsRequest
	for _, l := range lines {
		req.Commands = append(req.Commands, FromCommand(mustParse(t, l)))
	}
	body := h.want("POST", "/v1/commands", req, http.StatusOK, "")
	var resp CommandsResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	wantClass := []string{"", ClassServiceExists, "", ClassServiceUndef, ClassNoDest, "", "", ClassNoService,
		ClassNoService, ClassNoDest, "", ClassNoService, "", "", ClassNoDaemon, ClassRange}
	if len(resp.Results) != len(lines) || resp.Error != nil {
		t.Fatalf("response %+v", resp)
	}
	for i, r := range resp.Results {
		got := ""
		if r.Error != nil {
			got = r.Error.Class
		}
		if got != wantClass[i] {
			t.Errorf("%s: class %q, want %q", lines[i], got, wantClass[i])
		}
		if r.Error != nil {
			// The class turns back into the sentinel, which gives
			// ipvsadm's message for the command.
			text, code := req.Commands[i].Parsed().Failure(ErrorOf(r.Error.Class))
			if code != ipvsadm.ExitKernel || text == "" {
				t.Errorf("%s: failure %q %d", lines[i], text, code)
			}
		}
	}
	if h.saves != 1 {
		t.Errorf("%d saves for one batch, want 1", h.saves)
	}
	st := h.state("")
	if len(st.Services) != 2 || st.Timeouts.TCP != 100 || len(st.Daemons) != 1 {
		t.Errorf("state after the batch: %+v", st)
	}
	if d := st.Services[1].Dests[0]; d.Config.TunType != service.TunGUE || d.Config.TunPort != 6080 {
		t.Errorf("GUE real server: %+v", d)
	}

	// A batch that changes nothing saves nothing.
	h.want("POST", "/v1/commands", CommandsRequest{Commands: []Command{FromCommand(mustParse(t, "-Z"))}}, http.StatusOK, "")
	if h.saves != 1 {
		t.Errorf("zeroing saved")
	}
	// Malformed batches are refused as a whole.
	for _, bad := range []struct{ name, body string }{
		{"listing", `{"commands":[{"kind":1,"service":{"family":4,"proto":6,"addr":"198.18.0.3","port":80},"config":{"sched":"rr"}},{"kind":5}]}`},
		{"restore", `{"commands":[{"kind":12}]}`},
		{"unknown kind", `{"commands":[{"kind":99}]}`},
		{"none", `{"commands":[{"kind":0}]}`},
		{"no family", `{"commands":[{"kind":1,"config":{"sched":"rr"}}]}`},
		{"zero no family", `{"commands":[{"kind":14,"options":4}]}`},
		{"daemon state", `{"commands":[{"kind":10,"daemon":{"state":"primary"}}]}`},
		{"not json", `-A -t 198.18.0.1:80`},
		{"empty", ``},
		{"unknown field", `{"commands":[],"extra":1}`},
		{"Go field names", `{"commands":[{"Kind":3}]}`},
		{"trailing", `{"commands":[]}{}`},
		{"wrong type", `{"commands":{"kind":1}}`},
		{"bad address", `{"commands":[{"kind":1,"service":{"family":4,"addr":"1.2.3"}}]}`},
		{"kind out of range", `{"commands":[{"kind":256}]}`},
	} {
		t.Run(bad.name, func(t *testing.T) {
			h.want("POST", "/v1/commands", bad.body, http.StatusBadRequest, ClassBadRequest)
		})
	}
	if n := h.ctl.Snapshot().Len(); n != 2 {
		t.Errorf("a refused batch changed the services: %d", n)
	}
}

func TestNotSaved(t *testing.T) {
	h := newHarness(t)
	h.fail = syscall.ENOSPC
	h.want("POST", "/v1/services", ServiceSpec{Key: Key(tcp80), Config: ServiceConfig{Sched: "rr"}}, http.StatusInternalServerError, ClassNotSaved)
	if h.ctl.Snapshot().Get(tcp80) == nil {
		t.Fatal("the change was not applied")
	}
	code, body := h.do("POST", "/v1/commands", CommandsRequest{Commands: []Command{
		FromCommand(mustParse(t, "-A -t 198.18.0.1:80 -s rr")),
		FromCommand(mustParse(t, "-A -t 198.18.0.1:81 -s rr")),
	}})
	var resp CommandsResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil || code != http.StatusInternalServerError {
		t.Fatalf("%d %s %v", code, body, err)
	}
	if resp.Error == nil || resp.Error.Class != ClassNotSaved || !strings.Contains(resp.Error.Message, "no space left") ||
		len(resp.Results) != 2 || resp.Results[0].Error.Class != ClassServiceExists || resp.Results[1].Error != nil {
		t.Errorf("response %s", body)
	}
}

func TestPanicRecovered(t *testing.T) {
	h := newHarness(t)
	h.srv.persist = func() error { panic("boom") }
	h.want("POST", "/v1/flush", nil, http.StatusInternalServerError, ClassInternal)
	// The change lock was released: the server goes on.
	h.srv.persist = nil
	h.want("POST", "/v1/flush", nil, http.StatusNoContent, "")
}

func TestConnections(t *testing.T) {
	h := newHarness(t)
	for _, l := range []string{
		"-A -t 198.18.0.1:80 -s rr",
		"-a -t 198.18.0.1:80 -r 198.19.0.1:8080 -m",
		"-A -u 198.18.0.1:53 -s rr -p 300",
		"-a -u 198.18.0.1:53 -r 198.19.0.2",
		"-A -f 5 -s rr -p 60",
		"-a -f 5 -r 198.19.0.3:0",
	} {
		if err := h.srv.apply(new(mustParse(t, l))); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
	client := netip.MustParseAddr("198.18.100.7")
	w := h.eng.NewWorker(0)
	w.Begin()
	for _, p := range []engine.Packet{
		{Proto: service.ProtoTCP, Src: client, SrcPort: 40000, Dst: vip, DstPort: 80, TCPFlags: 0x02, Len: 60},
		{Proto: service.ProtoUDP, Src: client, SrcPort: 5353, Dst: vip, DstPort: 53, Len: 60},
		{Proto: service.ProtoTCP, Src: client, SrcPort: 40001, Dst: netip.MustParseAddr("198.18.0.5"), DstPort: 443, TCPFlags: 0x02, Len: 60, Mark: 5},
	} {
		if d := w.In(&p); d.Verdict != engine.Forward {
			t.Fatalf("%+v: %v", p, d.Verdict)
		}
	}
	h.clk.Advance(10500 * time.Millisecond)

	st := h.state("?conns=true")
	type row struct {
		proto    uint8
		state    string
		template bool
		vaddr    string
		fwmark   uint32
		expires  uint32
	}
	var got []row
	for _, c := range st.Conns {
		got = append(got, row{c.Proto, c.State, c.Template, c.VAddr.String(), c.FWMark, c.Expires})
	}
	tcpSynRecv := uint32(60 - 11) // SYN_RECV 60 s, truncated after 10.5 s
	want := []row{
		{6, "SYN_RECV", false, "198.18.0.1", 0, tcpSynRecv},
		{17, "UDP", false, "198.18.0.1", 0, 300 - 11},
		{17, "NONE", true, "198.18.0.1", 0, 300 - 11},
		{6, "SYN_RECV", false, "198.18.0.5", 5, tcpSynRecv},
		{0, "NONE", true, "invalid IP", 5, 60 - 11},
	}
	less := func(a, b row) bool {
		if a.proto != b.proto {
			return a.proto < b.proto
		}
		if a.template != b.template {
			return !a.template
		}
		return a.vaddr < b.vaddr
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(row{}), cmpSortRows(less)); diff != "" {
		t.Errorf("connections (-want +got):\n%s", diff)
	}
	if st := h.state(""); st.Conns != nil {
		t.Errorf("connections without conns=true: %d", len(st.Conns))
	}
	for q, n := range map[string]int{
		"?conns=1&proto=udp":               2,
		"?conns=1&proto=17&templates=0":    1,
		"?conns=1&templates=false":         3,
		"?conns=1&caddr=198.18.100.7":      5,
		"?conns=1&vaddr=198.18.0.5":        1,
		"?conns=1&daddr=198.19.0.1":        1,
		"?conns=1&dport=8080":              1,
		"?conns=1&vport=53&cport=5353":     1,
		"?conns=1&proto=sctp":              0,
		"?conns=1&caddr=::ffff:198.18.0.1": 0,
	} {
		if got := len(h.state(q).Conns); got != n {
			t.Errorf("%s: %d connections, want %d", q, got, n)
		}
	}
	for _, q := range []string{"?conns=maybe", "?conns=1&proto=ip6", "?conns=1&caddr=x", "?conns=1&vport=65536", "?proto=tcp", "?conns=1&templates=2"} {
		h.want("GET", "/v1/state"+q, nil, http.StatusBadRequest, ClassBadRequest)
	}

	// And the listing ipvsadm prints from it.
	var b strings.Builder
	if err := ipvsadm.List(&b, h.state("?conns=1&proto=tcp&templates=0&vaddr=198.18.0.1"), ipvsadm.ListOptions{Connections: true, Numeric: true}, nil); err != nil {
		t.Fatal(err)
	}
	wantList := "IPVS connection entries\n" +
		"pro expire state       source             virtual            destination\n" +
		"TCP 00:49  SYN_RECV    198.18.100.7:40000 198.18.0.1:80      198.19.0.1:8080\n"
	if b.String() != wantList {
		t.Errorf("ipvsadm -Lcn:\n%s\nwant:\n%s", b.String(), wantList)
	}
}

// cmpSortRows sorts slices of rows before comparing.
func cmpSortRows[T any](less func(a, b T) bool) cmp.Option {
	return cmp.Transformer("sort", func(in []T) []T {
		out := append([]T(nil), in...)
		for i := 1; i < len(out); i++ {
			for j := i; j > 0 && less(out[j], out[j-1]); j-- {
				out[j], out[j-1] = out[j-1], out[j]
			}
		}
		return out
	})
}

func TestErrorTable(t *testing.T) {
	tests := []struct {
		err    error
		class  string
		status int
	}{
		{control.ErrServiceExists, ClassServiceExists, 409},
		{control.ErrSchedNotFound, ClassSchedNotFound, 422},
		{control.ErrNoService, ClassNoService, 404},
		{control.ErrServiceUndef, ClassServiceUndef, 404},
		{control.ErrDestExists, ClassDestExists, 409},
		{control.ErrNoDest, ClassNoDest, 404},
		{control.ErrRange, ClassRange, 422},
		{control.ErrAFNoSupport, ClassAFNoSupport, 422},
		{control.ErrInvalid, ClassInvalid, 422},
		{proto.ErrTimeoutRange, ClassInvalid, 422},
		{control.ErrTooManyDests, ClassTooManyDests, 507},
		{syscall.EEXIST, ClassDaemonExists, 409},
		{syscall.ESRCH, ClassNoDaemon, 404},
		{syscall.ENODEV, ClassNoDevice, 422},
		{ErrBadRequest, ClassBadRequest, 400},
		{ErrNotSaved, ClassNotSaved, 500},
		{ErrInternal, ClassInternal, 500},
		{errors.New("something else"), ClassInternal, 500},
	}
	for _, tt := range tests {
		wrapped := errors.Join(errors.New("context"), tt.err)
		class, status := ClassOf(wrapped)
		if class != tt.class || status != tt.status {
			t.Errorf("ClassOf(%v) = %s %d, want %s %d", tt.err, class, status, tt.class, tt.status)
		}
		if tt.err == proto.ErrTimeoutRange || tt.class == ClassInternal && tt.err != ErrInternal {
			continue // not canonical for its class
		}
		if back := ErrorOf(class); !errors.Is(back, tt.err) {
			t.Errorf("ErrorOf(%s) = %v, want %v", class, back, tt.err)
		}
	}
	if ErrorOf("no_such_class") != nil {
		t.Error("unknown class has an error")
	}
	// A failed save wrapping an errno of the table stays "not saved".
	if class, _ := ClassOf(errors.Join(ErrNotSaved, syscall.EEXIST)); class != ClassNotSaved {
		t.Errorf("not saved with EEXIST: %s", class)
	}
}

func TestServiceID(t *testing.T) {
	for _, k := range []service.Key{
		tcp80,
		{Family: 6, Proto: service.ProtoUDP, Addr: vip6, Port: 53},
		{Family: 4, Proto: service.ProtoSCTP, Addr: vip, Port: 0},
		{Family: 4, FWMark: 1},
		{Family: 6, FWMark: 4294967295},
	} {
		id := ServiceID(k)
		back, err := ParseServiceID(id)
		if err != nil || back != k {
			t.Errorf("%v -> %q -> %v, %v", k, id, back, err)
		}
	}
	for _, bad := range []string{"", "tcp", "tcp:1.2.3.4", "tcp:[fe80::1%eth0]:80", "fwmark:x", "fwmark:4294967296", "gre:1.2.3.4:1"} {
		if _, err := ParseServiceID(bad); err == nil {
			t.Errorf("ParseServiceID(%q) accepted", bad)
		}
	}
	if got := ServiceID(service.Key{Family: 4, Proto: 47, Addr: vip, Port: 1}); got != "47:198.18.0.1:1" {
		t.Errorf("unknown protocol: %s", got)
	}
	if _, _, err := ParseDestID("[fe80::1%eth0]:80"); err == nil {
		t.Error("zone accepted")
	}
	a, p, err := ParseDestID("[::ffff:198.19.0.1]:80")
	if err != nil || a != rip1 || p != 80 || DestID(a, p) != "198.19.0.1:80" {
		t.Errorf("mapped address: %v %d %v", a, p, err)
	}
}
