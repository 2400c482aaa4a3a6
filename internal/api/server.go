package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"

	"golvs/internal/clock"
	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/ipvsadm"
)

// maxBody bounds a request body. The largest legitimate body is a -R
// batch: 1000 services with 10 real servers each encode to about 8 MB of
// commands; 64 MiB leaves room for eight times that and still bounds what
// a client can make the daemon buffer.
const maxBody = 64 << 20

// Config configures a Server.
type Config struct {
	// Control holds the virtual services.
	Control *control.Control
	// Engine holds the timeouts, the settings and the connection table.
	Engine *engine.Engine
	// Clock must be the engine's clock (the connection listing's timers
	// are computed against it); nil means clock.Real.
	Clock clock.Clock
	// Persist, when set, is called after every successful change (once
	// per request), with the server's change lock held: lvsd saves the
	// state file there. Its error is reported to the client as
	// ClassNotSaved; the change stays applied.
	Persist func() error
	// Log receives request failures that are lvsd's fault (failed saves,
	// panics); nil discards them.
	Log *slog.Logger
	// Reload, when set, reads the configuration file again and applies
	// the difference (POST /v1/reload, as SIGHUP does). It returns the
	// file's warnings, or an error (wrapping ErrBadConfig) saying why the
	// file was refused, in which case nothing changed. Nil: ErrNoConfig.
	Reload func() (warnings []string, err error)
	// Health, when set, returns the health checkers' state (GET
	// /v1/health); nil: ErrNoConfig.
	Health func() []RealServerHealth
	// Daemons, when set, runs the connection-sync daemons (lvsd passes
	// its syncd.Manager): --start-daemon and --stop-daemon start and
	// stop them, -L --daemon lists them, GET /v1/sync returns their
	// counters if it has them (SyncStats). Nil: the daemons are only
	// validated and recorded, and nothing is sent or received.
	Daemons Daemons
}

// Server is the control API, an http.Handler. It is safe for concurrent
// use: listings read the lock-free snapshot and the connection table;
// changes are serialised by mu, each followed by its save.
type Server struct {
	ctl   *control.Control
	eng   *engine.Engine
	clock clock.Clock
	log   *slog.Logger
	mux   *http.ServeMux

	// mu serialises changes with their saves, so that the state file
	// is saved in the order of the changes.
	mu      sync.Mutex
	persist func() error // guarded by mu

	// dmu guards the sync daemons recorded without a Daemons hook (see
	// startDaemon).
	dmu     sync.Mutex
	daemons []ipvsadm.DaemonEntry
	syncd   Daemons // nil: record only

	reload func() ([]string, error)
	health func() []RealServerHealth
}

// New returns a Server over cfg.Control and cfg.Engine.
func New(cfg Config) *Server {
	s := &Server{
		ctl:     cfg.Control,
		eng:     cfg.Engine,
		clock:   cfg.Clock,
		log:     cfg.Log,
		persist: cfg.Persist,
		mux:     http.NewServeMux(),
		reload:  cfg.Reload,
		health:  cfg.Health,
		syncd:   cfg.Daemons,
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	m := s.mux
	m.HandleFunc("GET /v1/state", s.getState)
	m.HandleFunc("POST /v1/commands", s.postCommands)
	m.HandleFunc("GET /v1/services/{svc}", s.getService)
	m.HandleFunc("POST /v1/services", s.addService)
	m.HandleFunc("PUT /v1/services/{svc}", s.editService)
	m.HandleFunc("DELETE /v1/services/{svc}", s.deleteService)
	m.HandleFunc("POST /v1/services/{svc}/dests", s.addDest)
	m.HandleFunc("PUT /v1/services/{svc}/dests/{dest}", s.editDest)
	m.HandleFunc("DELETE /v1/services/{svc}/dests/{dest}", s.deleteDest)
	m.HandleFunc("POST /v1/services/{svc}/zero", s.zeroService)
	m.HandleFunc("POST /v1/zero", s.zeroAll)
	m.HandleFunc("POST /v1/flush", s.flush)
	m.HandleFunc("GET /v1/timeouts", s.getTimeouts)
	m.HandleFunc("PUT /v1/timeouts", s.putTimeouts)
	m.HandleFunc("GET /v1/settings", s.getSettings)
	m.HandleFunc("PUT /v1/settings", s.putSettings)
	m.HandleFunc("GET /v1/daemons", s.getDaemons)
	m.HandleFunc("POST /v1/daemons", s.startDaemonHTTP)
	m.HandleFunc("DELETE /v1/daemons/{state}", s.stopDaemonHTTP)
	m.HandleFunc("GET /v1/sync", s.getSyncStats)
	m.HandleFunc("POST /v1/reload", s.postReload)
	m.HandleFunc("GET /v1/health", s.getHealth)
	return s
}

// ServeHTTP implements http.Handler. A panicking handler is answered
// with ClassInternal and logged with its stack; the daemon goes on.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("API handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			writeError(w, fmt.Errorf("%w: %v", ErrInternal, v))
		}
	}()
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		s.mux.ServeHTTP(w, r)
		return
	}
	// One log line per change (an ipvsadm -R of a thousand services is
	// one request, one line).
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	if rec.status < 300 {
		s.log.Info("configuration changed", "method", r.Method, "path", r.URL.Path)
	} else {
		s.log.Info("change refused", "method", r.Method, "path", r.URL.Path, "status", rec.status)
	}
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// writeJSON writes v with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	// An encoding error here is the client going away: nothing to do.
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes err as an ErrorBody with its class's status.
func writeError(w http.ResponseWriter, err error) {
	_, status := ClassOf(err)
	writeJSON(w, status, ErrorBody{Error: *wireError(err)})
}

// badRequest wraps an error of the request's form as ErrBadRequest.
func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

// decode reads r's body as one JSON value into v, strictly: unknown
// fields, trailing data, wrong types and oversized bodies are
// ErrBadRequest.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return badRequest("empty body, want JSON")
		}
		return badRequest("body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("body: data after the JSON value")
	}
	return nil
}

// change runs apply under the change lock and, if it succeeded, saves.
func (s *Server) change(apply func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := apply(); err != nil {
		return err
	}
	return s.save()
}

// save calls the persistence hook. Called with mu held.
func (s *Server) save() error {
	if s.persist == nil {
		return nil
	}
	if err := s.persist(); err != nil {
		s.log.Error("state not saved", "err", err)
		return fmt.Errorf("%w: %w", ErrNotSaved, err)
	}
	return nil
}

// respond answers a change: 201 or 204 without a body, or the error.
func respond(w http.ResponseWriter, code int, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(code)
}
