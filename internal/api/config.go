package api

import (
	"net/http"
	"time"
)

// ReloadResult is the answer to POST /v1/reload.
type ReloadResult struct {
	// Warnings are the configuration file's warnings (keywords GoLVS
	// parses but does not act on, unknown keywords).
	Warnings []string `json:"warnings,omitempty"`
}

// RealServerHealth is the state of one real server's health checkers
// (GET /v1/health): keepalived's view of the server.
type RealServerHealth struct {
	// Service is the virtual server as its configuration names it
	// ("TCP 198.18.0.10:80", "FWM 1 (IPv4)", "group web").
	Service string `json:"service"`
	// Server is the real server, "ADDR:PORT".
	Server string `json:"server"`
	// Up: every checker is up. InService: the server is in the virtual
	// service now (with inhibit_on_failure a down server stays with
	// weight 0; while the quorum is lost, up servers are out).
	Up        bool `json:"up"`
	InService bool `json:"in_service"`
	// Weight is the configured weight, EffectiveWeight the one IPVS has.
	Weight          int32 `json:"weight"`
	EffectiveWeight int32 `json:"effective_weight"`
	// Sorry: the sorry server of its virtual service.
	Sorry bool `json:"sorry,omitempty"`
	// LastChange is when Up last changed (zero: not since the start).
	LastChange time.Time       `json:"last_change,omitzero"`
	Checkers   []CheckerHealth `json:"checkers,omitempty"`
}

// CheckerHealth is one checker of a real server.
type CheckerHealth struct {
	Kind string `json:"kind"` // TCP_CHECK, HTTP_GET, ...
	Up   bool   `json:"up"`
	// LastResult says what the last probe found ("" before the first),
	// LastCheck when it ended, LastDuration how long it took.
	LastResult   string        `json:"last_result,omitempty"`
	LastCheck    time.Time     `json:"last_check,omitzero"`
	LastDuration time.Duration `json:"last_duration_ns,omitempty"`
	LastChange   time.Time     `json:"last_change,omitzero"`
	// ConsecutiveFailures since the last success; Checks and Failures
	// since the start.
	ConsecutiveFailures int    `json:"consecutive_failures"`
	Checks              uint64 `json:"checks"`
	Failures            uint64 `json:"failures"`
}

// postReload handles POST /v1/reload.
func (s *Server) postReload(w http.ResponseWriter, r *http.Request) {
	if s.reload == nil {
		writeError(w, ErrNoConfig)
		return
	}
	warnings, err := s.reload()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ReloadResult{Warnings: warnings})
}

// getHealth handles GET /v1/health.
func (s *Server) getHealth(w http.ResponseWriter, r *http.Request) {
	if s.health == nil {
		writeError(w, ErrNoConfig)
		return
	}
	h := s.health()
	if h == nil {
		h = []RealServerHealth{}
	}
	writeJSON(w, http.StatusOK, h)
}
