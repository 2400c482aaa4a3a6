package nslab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The control socket: `lvslab stop-rs 1` and the other subcommands,
// run from another terminal, ask the running lab (which owns every
// process) to act, over HTTP on a Unix socket in the run directory.

// callTimeout bounds one subcommand: restart-master waits for lvsd's
// start (startTimeout) and the VIPs' move.
const callTimeout = startTimeout + 15*time.Second

func socketPath(runDir string) string { return filepath.Join(runDir, "lab.sock") }

// ErrNotRunning is Call's error when no lab answers in the run
// directory.
var ErrNotRunning = errors.New("no lab is running")

// Call asks the lab running in runDir to do cmd (stop-rs, start-rs,
// kill-master, restart-master, weight, down) with its parameters, and
// returns its answer, text for the user.
func Call(ctx context.Context, runDir, cmd string, params url.Values) (string, error) {
	return call(ctx, runDir, http.MethodPost, "/"+cmd, params)
}

// QueryStatus returns the status of the lab running in runDir.
func QueryStatus(ctx context.Context, runDir string) (*Status, error) {
	body, err := call(ctx, runDir, http.MethodGet, "/status", nil)
	if err != nil {
		return nil, err
	}
	st := new(Status)
	if err := json.Unmarshal([]byte(body), st); err != nil {
		return nil, fmt.Errorf("the lab's status: %w", err)
	}
	return st, nil
}

func call(ctx context.Context, runDir, method, path string, params url.Values) (string, error) {
	sock := socketPath(runDir)
	if _, err := os.Stat(sock); err != nil {
		return "", fmt.Errorf("%w (no %s: start one with lvslab up)", ErrNotRunning, sock)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	defer tr.CloseIdleConnections()
	u := "http://lab" + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", fmt.Errorf("%w (%s does not answer: %v)", ErrNotRunning, sock, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

// serveControl serves the control socket until the listener is closed.
func (l *Lab) controlHandler() http.Handler {
	mux := http.NewServeMux()
	text := func(f func(r *http.Request) (string, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			msg, err := f(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			io.WriteString(w, msg)
		}
	}
	rsArg := func(r *http.Request) (int, error) { return parseRS(r.FormValue("rs")) }
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(l.Status(r.Context()))
	})
	mux.HandleFunc("POST /stop-rs", text(func(r *http.Request) (string, error) {
		n, err := rsArg(r)
		if err != nil {
			return "", err
		}
		return l.StopRS(n)
	}))
	mux.HandleFunc("POST /start-rs", text(func(r *http.Request) (string, error) {
		n, err := rsArg(r)
		if err != nil {
			return "", err
		}
		return l.StartRS(n)
	}))
	mux.HandleFunc("POST /kill-master", text(func(r *http.Request) (string, error) { return l.KillMaster(r.Context()) }))
	mux.HandleFunc("POST /restart-master", text(func(r *http.Request) (string, error) { return l.RestartMaster(r.Context()) }))
	mux.HandleFunc("POST /weight", text(func(r *http.Request) (string, error) {
		n, err := rsArg(r)
		if err != nil {
			return "", err
		}
		w, err := strconv.Atoi(r.FormValue("weight"))
		if err != nil {
			return "", fmt.Errorf("weight %q: want a number", r.FormValue("weight"))
		}
		return l.SetWeight(r.Context(), r.FormValue("service"), n, w)
	}))
	mux.HandleFunc("POST /down", text(func(*http.Request) (string, error) {
		l.requestDown()
		return "the lab is stopping and removing everything it made\n", nil
	}))
	return mux
}

// parseRS parses a real server number (1 to 3, or rs1 to rs3).
func parseRS(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(strings.ToLower(s), "rs"))
	if err != nil || n < 1 || n > numRS {
		return 0, fmt.Errorf("real server %q: want 1 to %d", s, numRS)
	}
	return n, nil
}

// ParseWeightArgs parses `lvslab weight SERVICE RS W`'s arguments:
// SERVICE is NAT, DR, TUN or UDP (any case) or the service's VIP:port;
// RS is 1 to 3 (or rs1 to rs3); W is a weight from 0 to 65535 (ipvsadm's
// range).
func ParseWeightArgs(args []string) (svc string, rs, weight int, err error) {
	if len(args) != 3 {
		return "", 0, 0, fmt.Errorf("want SERVICE RS WEIGHT, got %d argument(s)", len(args))
	}
	s, ok := serviceByName(args[0])
	if !ok {
		var names []string
		for _, x := range Services {
			names = append(names, x.Name)
		}
		return "", 0, 0, fmt.Errorf("service %q: want one of %s (or its VIP:port)", args[0], strings.Join(names, ", "))
	}
	if rs, err = parseRS(args[1]); err != nil {
		return "", 0, 0, err
	}
	weight, err = strconv.Atoi(args[2])
	if err != nil || weight < 0 || weight > 65535 {
		return "", 0, 0, fmt.Errorf("weight %q: want 0 to 65535", args[2])
	}
	return s.Name, rs, weight, nil
}
