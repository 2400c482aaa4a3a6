package api

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"golvs/internal/ipvsadm"
)

// fakeDaemons is a Daemons hook that records its calls, with the
// kernel's errors.
type fakeDaemons struct {
	calls   []string
	running []ipvsadm.DaemonEntry
}

func (f *fakeDaemons) Start(c ipvsadm.DaemonConfig) error {
	f.calls = append(f.calls, fmt.Sprintf("start %s %s %d", c.State, c.MCastInterface, c.SyncID))
	if c.MCastInterface == "nosuch" {
		return fmt.Errorf("interface: %w", syscall.ENODEV)
	}
	for _, e := range f.running {
		if e.State == c.State {
			return fmt.Errorf("%s: %w", c.State, syscall.EEXIST)
		}
	}
	f.running = append(f.running, ipvsadm.DaemonEntry{State: c.State, MCastIfn: c.MCastInterface, SyncID: uint32(c.SyncID), SyncMaxLen: 1472})
	return nil
}

func (f *fakeDaemons) Stop(state string) error {
	f.calls = append(f.calls, "stop "+state)
	for i, e := range f.running {
		if e.State == state {
			f.running = slices.Delete(f.running, i, i+1)
			return nil
		}
	}
	return fmt.Errorf("%s: %w", state, syscall.ESRCH)
}

func (f *fakeDaemons) List() []ipvsadm.DaemonEntry { return slices.Clone(f.running) }

func (f *fakeDaemons) SyncStats() any { return map[string]int{"messages_sent": 3} }

// TestDaemonsHook: with a Daemons hook the API starts, stops and lists
// through it, with the kernel's errors; the checks of the state and the
// group stay the API's.
func TestDaemonsHook(t *testing.T) {
	h := newHarness(t)
	f := &fakeDaemons{}
	h.srv = New(Config{Control: h.ctl, Engine: h.eng, Clock: h.clk, Daemons: f})
	h.want("POST", "/v1/daemons", ipvsadm.DaemonEntry{State: "backup", MCastIfn: "lo", SyncID: 3}, http.StatusCreated, "")
	h.want("POST", "/v1/daemons", ipvsadm.DaemonEntry{State: "backup", MCastIfn: "lo"}, http.StatusConflict, ClassDaemonExists)
	h.want("POST", "/v1/daemons", ipvsadm.DaemonEntry{State: "master", MCastIfn: "nosuch"}, http.StatusUnprocessableEntity, ClassNoDevice)
	h.want("POST", "/v1/daemons", ipvsadm.DaemonEntry{State: "master", MCastIfn: "lo", MCastGroup: netip.MustParseAddr("198.18.0.1")}, http.StatusUnprocessableEntity, ClassInvalid)
	h.want("POST", "/v1/daemons", ipvsadm.DaemonEntry{State: "primary", MCastIfn: "lo"}, http.StatusBadRequest, ClassBadRequest)
	if st := h.state(""); len(st.Daemons) != 1 || st.Daemons[0].State != "backup" || st.Daemons[0].SyncID != 3 {
		t.Errorf("state's daemons: %+v", st.Daemons)
	}
	if _, body := h.do("GET", "/v1/sync", nil); body != "{\"messages_sent\":3}\n" {
		t.Errorf("GET /v1/sync: %q", body)
	}
	h.want("DELETE", "/v1/daemons/backup", nil, http.StatusNoContent, "")
	h.want("DELETE", "/v1/daemons/backup", nil, http.StatusNotFound, ClassNoDaemon)
	// ipvsadm --start-daemon through POST /v1/commands takes the same way.
	h.want("POST", "/v1/commands", CommandsRequest{Commands: []Command{FromCommand(mustParse(t, "--start-daemon master --mcast-interface lo --syncid 5"))}}, http.StatusOK, "")
	want := []string{"start backup lo 3", "start backup lo 0", "start master nosuch 0", "stop backup", "stop backup", "start master lo 5"}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls %q, want %q", f.calls, want)
	}
	if h.saves != 0 {
		t.Errorf("daemons saved the state")
	}

	// Without a hook with counters: 404.
	h.srv = New(Config{Control: h.ctl, Engine: h.eng, Clock: h.clk})
	h.want("GET", "/v1/sync", nil, http.StatusNotFound, ClassNoDaemon)
}
