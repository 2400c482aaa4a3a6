package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestReloadAndHealth(t *testing.T) {
	h := newHarness(t)
	// Without a configuration file: no_config on both.
	for _, req := range [][2]string{{"POST", "/v1/reload"}, {"GET", "/v1/health"}} {
		if code, body := h.do(req[0], req[1], nil); code != http.StatusNotFound || !strings.Contains(body, ClassNoConfig) {
			t.Errorf("%s %s without a file: %d %s", req[0], req[1], code, body)
		}
	}
	good := true
	h.srv.reload = func() ([]string, error) {
		if !good {
			return nil, fmt.Errorf("%w: lvsd.conf:3: lvs_sched: unknown scheduler \"xx\"", ErrBadConfig)
		}
		return []string{"lvsd.conf:7: smtp_alert: not acted on"}, nil
	}
	h.srv.health = func() []RealServerHealth {
		return []RealServerHealth{{Service: "TCP 198.18.0.10:80", Server: "198.18.1.11:80", Up: true, InService: true, Weight: 1, EffectiveWeight: 1,
			Checkers: []CheckerHealth{{Kind: "HTTP_GET", Up: true, LastResult: "HTTP 200", Checks: 3}}}}
	}
	if code, body := h.do("POST", "/v1/reload", nil); code != http.StatusOK || !strings.Contains(body, "smtp_alert: not acted on") {
		t.Errorf("good reload: %d %s", code, body)
	}
	good = false
	if code, body := h.do("POST", "/v1/reload", nil); code != http.StatusUnprocessableEntity || !strings.Contains(body, ClassBadConfig) || !strings.Contains(body, "unknown scheduler") {
		t.Errorf("bad reload: %d %s", code, body)
	}
	if code, body := h.do("GET", "/v1/health", nil); code != http.StatusOK || !strings.Contains(body, `"kind":"HTTP_GET"`) || !strings.Contains(body, `"in_service":true`) {
		t.Errorf("health: %d %s", code, body)
	}
}

// TestChangeLog: each change is one log line, refused ones say so, and
// listings log nothing.
func TestChangeLog(t *testing.T) {
	h := newHarness(t)
	var buf strings.Builder
	h.srv.log = slog.New(slog.NewTextHandler(&buf, nil))
	spec := ServiceSpec{Key: Key(tcp80), Config: ServiceConfig{Sched: "rr"}}
	h.do("POST", "/v1/services", spec)
	h.do("POST", "/v1/services", spec)
	h.do("GET", "/v1/state", nil)
	out := buf.String()
	if strings.Count(out, `msg="configuration changed" method=POST path=/v1/services`) != 1 ||
		strings.Count(out, `msg="change refused" method=POST path=/v1/services status=409`) != 1 || strings.Count(out, "\n") != 2 {
		t.Errorf("log:\n%s", out)
	}
}
