package web

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golvs/internal/service"
)

// TestMain fails the package if goroutines outlive its tests: the
// package starts none of its own, and its tests close every server.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		var left []string
		deadline := time.Now().Add(5 * time.Second)
		for {
			left = leftGoroutines()
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(left) > 0 {
			fmt.Fprintf(os.Stderr, "goroutine leak: %d goroutines outlived the tests:\n%s\n", len(left), strings.Join(left, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// leftGoroutines returns the stacks of the goroutines other than this one
// and the runtime's and standard library's own (the signal loop that
// fuzzing and os/signal start).
func leftGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "TestMain") || strings.Contains(g, "os/signal.loop") || strings.TrimSpace(g) == "" {
			continue
		}
		out = append(out, g)
	}
	return out
}

// TestConcurrent serves scrapes and status requests over a real loopback
// listener while the configuration changes, traffic is counted, the
// estimator runs and the owner samples: for the race detector, and every
// response must be whole.
func TestConcurrent(t *testing.T) {
	l := newLab(t)
	var nowMu sync.Mutex
	now := epoch
	clockNow := func() time.Time { nowMu.Lock(); defer nowMu.Unlock(); return now }
	h := NewHandler(fullSource(l), Options{Now: clockNow, Token: "tok"})
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()

	fetch := func(path string) error {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer tok")
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s: %s", path, res.Status, b)
		}
		if path == "/metrics" && !strings.Contains(string(b), "golvs_build_info") {
			return fmt.Errorf("/metrics: incomplete response")
		}
		return nil
	}

	const rounds = 30
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	for _, path := range []string{"/metrics", "/api/status", "/metrics", "/api/status?since=1"} {
		wg.Go(func() {
			for range rounds {
				if err := fetch(path); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() { // the owner's ticker
		for range rounds {
			nowMu.Lock()
			now = now.Add(2 * time.Second)
			nowMu.Unlock()
			l.clk.Advance(2 * time.Second)
			l.ctl.TickEstimators(l.clk.Nanotime())
			h.Sample()
		}
	})
	wg.Go(func() { // the data path
		d := l.dest(webKey, rs1, 80)
		for i := range rounds * 10 {
			d.Stats.AddConn(i % 2)
			d.Bind(false, i%3 == 0)
		}
	})
	wg.Go(func() { // ipvsadm
		k := service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: vip, Port: 8080}
		for i := range rounds {
			if err := l.ctl.AddService(k, service.Config{Sched: "rr"}); err != nil {
				errs <- err
				return
			}
			_ = l.ctl.AddDest(k, netip.AddrFrom4([4]byte{198, 19, 1, byte(i)}), 8080, service.DestConfig{Weight: 1})
			_ = l.ctl.EditDest(webKey, rs2, 80, service.DestConfig{Fwd: service.Masq, Weight: int32(i)})
			if err := l.ctl.DeleteService(k); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
