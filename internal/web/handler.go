package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// assets are the status page: index.html, style.css, app.js. No CDN: the
// page works on a director without internet access.
//
//go:embed assets
var assets embed.FS

// Options configure a Handler.
type Options struct {
	// Token, when not empty, is required on /metrics and /api/status, as
	// "Authorization: Bearer TOKEN" or "?token=TOKEN". The page's own
	// files (/, /assets/) and /healthz hold no data and need none; the
	// page passes a token given in its address on to its requests.
	Token string
	// Log receives request failures and refused requests; nil discards.
	Log *slog.Logger
	// Now gives the wall-clock time of samples and reports; nil means
	// time.Now.
	Now func() time.Time
}

// Handler serves lvsd's HTTP side: /metrics, /api/status, /healthz and
// the status page. It is safe for concurrent use. It keeps a bounded
// history of the services' rates for the page's graphs, sampled by Sample
// and by the page's requests; it starts no goroutine.
type Handler struct {
	src     Source
	token   [sha256.Size]byte // SHA-256 of Options.Token; immutable
	auth    bool              // a token is required; immutable
	log     *slog.Logger
	now     func() time.Time
	info    BuildInfo // default build information, used when Source.Info is nil; immutable
	mux     *http.ServeMux
	metrics http.Handler
	hist    history
}

// NewHandler returns the handler of src. src.Control must not be nil.
func NewHandler(src Source, opts Options) *Handler {
	h := &Handler{src: src, log: opts.Log, now: opts.Now, auth: opts.Token != ""}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.token = sha256.Sum256([]byte(opts.Token))
	h.info = defaultBuildInfo(h.now())
	h.hist.init()

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newCollector(src, h.buildInfo),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	h.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{h.log},
		ErrorHandling: promhttp.ContinueOnError,
	})

	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic("web: embedded assets: " + err.Error()) // the embed directive guarantees the directory
	}
	m := http.NewServeMux()
	m.Handle("GET /metrics", h.authorized(h.metrics))
	m.Handle("GET /api/status", h.authorized(http.HandlerFunc(h.serveStatus)))
	m.HandleFunc("GET /healthz", h.serveHealth)
	m.Handle("GET /{$}", pageHeaders(fileHandler(static, "index.html", "text/html; charset=utf-8")))
	m.Handle("GET /assets/style.css", pageHeaders(fileHandler(static, "style.css", "text/css; charset=utf-8")))
	m.Handle("GET /assets/app.js", pageHeaders(fileHandler(static, "app.js", "text/javascript; charset=utf-8")))
	h.mux = m
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	h.mux.ServeHTTP(w, r)
}

// Sample records the current rates of every service in the history the
// page's graphs show. The owner calls it every estimator.Interval (2 s,
// when the rates change) so that the graphs cover the time before the
// page was opened; without it the page's own requests sample. Calls
// closer together than the sampling interval are ignored.
func (h *Handler) Sample() { h.hist.sample(h.now(), h.src.Control) }

// buildInfo returns the provider's build information, completed with the
// binary's own.
func (h *Handler) buildInfo() BuildInfo {
	if h.src.Info == nil {
		return h.info
	}
	bi := h.src.Info()
	if bi.Version == "" {
		bi.Version = h.info.Version
	}
	if bi.GoVersion == "" {
		bi.GoVersion = h.info.GoVersion
	}
	if bi.Revision == "" {
		bi.Revision = h.info.Revision
	}
	if bi.Started.IsZero() {
		bi.Started = h.info.Started
	}
	return bi
}

// defaultBuildInfo reads the binary's build information; started is the
// handler's creation, taken as the daemon's start.
func defaultBuildInfo(started time.Time) BuildInfo {
	bi := BuildInfo{Version: "(devel)", GoVersion: runtime.Version(), Started: started}
	if b, ok := debug.ReadBuildInfo(); ok {
		if b.Main.Version != "" {
			bi.Version = b.Main.Version
		}
		for _, s := range b.Settings {
			if s.Key == "vcs.revision" {
				bi.Revision = s.Value
			}
		}
	}
	return bi
}

// authorized requires the token on next, when one is set.
func (h *Handler) authorized(next http.Handler) http.Handler {
	if !h.auth {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.tokenOK(r) {
			next.ServeHTTP(w, r)
			return
		}
		h.log.Debug("refused request without a valid token", "path", r.URL.Path, "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="lvsd"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a token is required: Authorization: Bearer TOKEN or ?token=TOKEN"})
	})
}

// tokenOK checks the request's token in constant time: the comparison is
// of SHA-256 digests, so neither the content nor the length of the token
// shows in the time taken.
func (h *Handler) tokenOK(r *http.Request) bool {
	var given string
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, tok, ok := strings.Cut(a, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return false
		}
		given = strings.TrimSpace(tok)
	} else {
		given = r.URL.Query().Get("token")
	}
	if given == "" {
		return false
	}
	d := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(d[:], h.token[:]) == 1
}

func (h *Handler) serveHealth(w http.ResponseWriter, _ *http.Request) {
	bi := h.buildInfo()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": bi.Version})
}

func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request) {
	var since int64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("since=%q: want Unix milliseconds", v)})
			return
		}
		since = n
	}
	now := h.now()
	h.hist.sample(now, h.src.Control)
	st := h.status(now, since)
	w.Header().Set("Cache-Control", "no-store")
	if err := writeJSON(w, http.StatusOK, st); err != nil {
		h.log.Warn("status response not sent", "err", err)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, err = w.Write(append(b, '\n'))
	return err
}

// pageHeaders adds the page's security headers: only its own scripts and
// styles (no inline code, no third party), no framing, and no Referer (the
// page's address may carry the token).
func pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// fileHandler serves one embedded file.
func fileHandler(fsys fs.FS, name, ctype string) http.Handler {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		panic("web: embedded asset " + name + ": " + err.Error()) // a build without the file is a programming error
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(b)
	})
}

// promLogger passes promhttp's errors (a failed collection, a failed
// write) to slog.
type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) {
	p.l.Warn("metrics: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

// ErrNoToken is returned by CheckListenAddr for an address other than a
// loopback address when no token is set.
var ErrNoToken = errors.New("serving the status page and metrics beyond the loopback interface needs a token")

// CheckListenAddr checks an address the handler is to be served on
// (HOST:PORT, as net.Listen takes it). The page is read-only but shows the
// whole configuration, so off loopback (127.0.0.0/8, ::1, "localhost")
// it needs a token: an empty host (every address), any other address and
// any other host name (which could resolve anywhere) without a token is
// ErrNoToken.
func CheckListenAddr(addr, token string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("listen address %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if token != "" || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("listen address %q: %w", addr, ErrNoToken)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
