package apiclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golvs/internal/api"
	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/ipvsadm"
	"golvs/internal/service"
)

// serve starts an API server on a Unix socket for the test's duration.
func serve(t *testing.T) (*Client, *control.Control) {
	t.Helper()
	// A short directory: socket paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "golvs-apiclient-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "lvsd.sock")
	ctl := control.New(control.Config{})
	eng, err := engine.New(engine.Config{Control: ctl, MaxConns: 1024})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.New(api.Config{Control: ctl, Engine: eng})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	c := New(socket)
	t.Cleanup(func() {
		c.Close()
		srv.Close()
		<-done
	})
	return c, ctl
}

func TestUnreachable(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "nothing.sock")
	c := New(socket)
	_, err := c.State(context.Background(), StateOptions{})
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Socket != socket || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("State = %v (%T)", err, err)
	}
	if want := "cannot reach lvsd at " + socket + ": connect: no such file or directory"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	// A socket nobody listens on (a killed lvsd's).
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	err = c.Do(context.Background(), ipvsadm.Command{Kind: ipvsadm.CmdFlush})
	if !errors.As(err, &ue) || !strings.HasSuffix(err.Error(), "connect: connection refused") {
		t.Errorf("stale socket: %v", err)
	}
	if New("").Socket() != DefaultSocket {
		t.Error("empty socket is not the default")
	}
}

func TestErrorsAreSentinels(t *testing.T) {
	c, _ := serve(t)
	ctx := context.Background()
	k := service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.1"), Port: 80}
	if err := c.AddService(ctx, k, service.Config{Sched: "rr"}); err != nil {
		t.Fatal(err)
	}
	err := c.AddService(ctx, k, service.Config{Sched: "rr"})
	var ae *Error
	if !errors.Is(err, control.ErrServiceExists) || !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Class != api.ClassServiceExists {
		t.Fatalf("second add: %v", err)
	}
	cmd := ipvsadm.Command{Kind: ipvsadm.CmdAddServer, Service: k, Dest: netip.MustParseAddr("198.19.0.1"), DestPort: 80,
		DestConfig: service.DestConfig{Weight: -1}}
	err = c.Do(ctx, cmd)
	if text, code := cmd.Failure(err); text != "Numerical result out of range" || code != ipvsadm.ExitKernel {
		t.Errorf("Failure = %q %d (%v)", text, code, err)
	}
	// An unknown class keeps its message and unwraps to nothing.
	e := &Error{Class: "from_the_future", Message: "new failure"}
	if e.Unwrap() != nil || e.Error() != "new failure" {
		t.Errorf("unknown class: %v", e.Unwrap())
	}
	// A plain-text answer of the mux (wrong method) is still an *Error.
	err = c.do(ctx, http.MethodGet, "/v1/flush", nil, nil)
	if !errors.As(err, &ae) || ae.Status != http.StatusMethodNotAllowed || ae.Class != api.ClassInternal {
		t.Errorf("405: %v", err)
	}
	// So is a malformed request.
	err = c.do(ctx, http.MethodPost, "/v1/commands", map[string]int{"commands": 1}, nil)
	if !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("malformed: %v", err)
	}
	if _, err := c.Apply(ctx, []ipvsadm.Command{{Kind: ipvsadm.CmdList}}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("listing sent as a change: %v", err)
	}
}

func TestMethods(t *testing.T) {
	c, ctl := serve(t)
	ctx := context.Background()
	k := service.Key{Family: service.IPv6, Proto: service.ProtoUDP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 53}
	rip := netip.MustParseAddr("2001:db8::10")
	steps := []struct {
		name string
		err  error
	}{
		{"add service", c.AddService(ctx, k, service.Config{Sched: "rr"})},
		{"edit service", c.EditService(ctx, k, service.Config{Sched: "wrr"})},
		{"add dest", c.AddDest(ctx, k, rip, 53, service.DestConfig{Fwd: service.Masq, Weight: 1})},
		{"edit dest", c.EditDest(ctx, k, rip, 53, service.DestConfig{Fwd: service.Masq, Weight: 7})},
		{"zero one", c.Zero(ctx, &k)},
		{"zero all", c.Zero(ctx, nil)},
		{"timeouts", c.SetTimeouts(ctx, api.Timeouts{UDP: 77})},
		{"settings", c.SetSettings(ctx, api.Settings{SloppyTCP: true})},
	}
	for _, s := range steps {
		if s.err != nil {
			t.Fatalf("%s: %v", s.name, s.err)
		}
	}
	e, err := c.Service(ctx, k)
	if err != nil || e.Config.Sched != "wrr" || len(e.Dests) != 1 || e.Dests[0].Config.Weight != 7 {
		t.Fatalf("Service = %+v, %v", e, err)
	}
	if to, err := c.Timeouts(ctx); err != nil || to.UDP != 77 || to.TCP != 900 {
		t.Errorf("Timeouts = %+v, %v", to, err)
	}
	if st, err := c.Settings(ctx); err != nil || !st.SloppyTCP || st.ConnReuseMode != 0 {
		t.Errorf("Settings = %+v, %v", st, err)
	}
	if err := c.DeleteDest(ctx, k, rip, 53); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteDest(ctx, k, rip, 53); !errors.Is(err, control.ErrNoDest) {
		t.Errorf("second delete: %v", err)
	}
	if err := c.DeleteService(ctx, k); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Service(ctx, k); !errors.Is(err, control.ErrNoService) {
		t.Errorf("deleted service: %v", err)
	}
	if err := c.AddService(ctx, service.Key{Family: service.IPv4, FWMark: 3}, service.Config{Sched: "rr"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctx); err != nil || ctl.Snapshot().Len() != 0 {
		t.Errorf("Flush: %v, %d left", err, ctl.Snapshot().Len())
	}
	st, err := c.State(ctx, StateOptions{Conns: true})
	if err != nil || len(st.Services) != 0 || st.Version != ipvsadm.KernelVersion {
		t.Errorf("State = %+v, %v", st, err)
	}
}
