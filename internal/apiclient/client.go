// Package apiclient is the Go client of lvsd's control API (package api)
// over its Unix socket, used by cmd/ipvsadm: what libipvs is to ipvsadm
// and the kernel (ipvsadm's libipvs/libipvs.c over the generic-netlink
// family "IPVS" of net/netfilter/ipvs/ip_vs_ctl.c).
//
// Failures of the daemon come back as *Error, which unwraps to the control
// sentinel (or errno) of its class, so that errors.Is(err,
// control.ErrNoService) works on the client side and ipvsadm.Command.Failure
// prints ipvsadm's exact message. A daemon that cannot be reached gives an
// *UnreachableError naming the socket.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"time"

	"golvs/internal/api"
	"golvs/internal/ipvsadm"
	"golvs/internal/service"
)

// DefaultSocket is where lvsd listens unless told otherwise.
const DefaultSocket = "/run/lvsd/lvsd.sock"

// dialTimeout bounds connecting to the socket: a local connect either
// succeeds at once or fails at once, unless the daemon's accept queue is
// full, and then the user should hear about it rather than wait.
const dialTimeout = 5 * time.Second

// maxResponse bounds a response body the client reads: a listing of a
// million connections is about 250 MB of JSON.
const maxResponse = 1 << 30

// Client talks to one lvsd. It is safe for concurrent use and keeps its
// connections open between calls; Close releases them.
type Client struct {
	socket string
	hc     *http.Client
}

// New returns a client of the lvsd listening on socket (DefaultSocket if
// empty). It does not connect yet.
func New(socket string) *Client {
	if socket == "" {
		socket = DefaultSocket
	}
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			c, err := d.DialContext(ctx, "unix", socket)
			if err != nil {
				return nil, &UnreachableError{Socket: socket, Err: err}
			}
			return c, nil
		},
		// One daemon, one client at a time in practice.
		MaxIdleConnsPerHost: 2,
		DisableCompression:  true, // a local socket; compression costs more than it saves
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// Socket returns the socket path the client uses.
func (c *Client) Socket() string { return c.socket }

// Close closes idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// UnreachableError says that nothing answers on the socket.
type UnreachableError struct {
	Socket string
	Err    error
}

func (e *UnreachableError) Error() string {
	msg := e.Err.Error()
	var se *os.SyscallError
	if errors.As(e.Err, &se) {
		// "connect: no such file or directory": the socket is named
		// already.
		msg = se.Error()
	}
	return "cannot reach lvsd at " + e.Socket + ": " + msg
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Error is a failure reported by lvsd. It unwraps to the canonical error
// of its class (api.ErrorOf): a control sentinel, a syscall.Errno for the
// sync daemon, or one of api's errors.
type Error struct {
	Status  int    // HTTP status
	Class   string // api.Class*
	Message string // the daemon's description
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the error of e's class, nil for a class this client does
// not know.
func (e *Error) Unwrap() error { return api.ErrorOf(e.Class) }

// do sends a request with an optional JSON body and decodes a JSON
// answer into out (if not nil). A non-2xx status is an *Error.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	// The host is a placeholder: the transport dials the socket.
	req, err := http.NewRequestWithContext(ctx, method, "http://lvsd"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *UnreachableError
		if errors.As(err, &ue) {
			return ue
		}
		return fmt.Errorf("lvsd at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("lvsd at %s: reading the answer: %w", c.socket, err)
	}
	if resp.StatusCode/100 != 2 {
		return decodeError(resp.StatusCode, b, out)
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("lvsd at %s: bad answer to %s %s: %w", c.socket, method, path, err)
	}
	return nil
}

// decodeError turns an error response into an *Error. A body that is no
// ErrorBody (the ServeMux's plain-text 404 and 405) keeps its text. A
// commands response (with results) is decoded into out as well.
func decodeError(status int, b []byte, out any) error {
	if cr, ok := out.(*api.CommandsResponse); ok {
		if json.Unmarshal(b, cr) == nil && cr.Error != nil {
			return &Error{Status: status, Class: cr.Error.Class, Message: cr.Error.Message}
		}
	}
	var eb api.ErrorBody
	if err := json.Unmarshal(b, &eb); err == nil && eb.Error.Class != "" {
		return &Error{Status: status, Class: eb.Error.Class, Message: eb.Error.Message}
	}
	return &Error{Status: status, Class: api.ClassInternal, Message: "HTTP " + strconv.Itoa(status) + ": " + string(bytes.TrimSpace(b))}
}

// StateOptions select what State returns.
type StateOptions struct {
	// Conns includes the connection table (ipvsadm -L -c), which may be
	// large.
	Conns bool
}

// State returns what a listing shows (GET /v1/state).
func (c *Client) State(ctx context.Context, opt StateOptions) (*ipvsadm.State, error) {
	path := "/v1/state"
	if opt.Conns {
		path += "?conns=true"
	}
	st := new(ipvsadm.State)
	if err := c.do(ctx, http.MethodGet, path, nil, st); err != nil {
		return nil, err
	}
	return st, nil
}

// Apply sends parsed ipvsadm commands (POST /v1/commands), which lvsd
// applies in order, each on its own, saving its state once. The result
// has one error (nil for success) per command; err is the failure of the
// request as a whole: lvsd unreachable, a malformed command (nothing was
// applied), or the state not saved (everything in results was applied).
func (c *Client) Apply(ctx context.Context, cmds []ipvsadm.Command) (results []error, err error) {
	req := api.CommandsRequest{Commands: make([]api.Command, len(cmds))}
	for i, cmd := range cmds {
		req.Commands[i] = api.FromCommand(cmd)
	}
	var resp api.CommandsResponse
	err = c.do(ctx, http.MethodPost, "/v1/commands", req, &resp)
	if len(resp.Results) == len(cmds) {
		results = make([]error, len(cmds))
		for i, r := range resp.Results {
			if r.Error != nil {
				results[i] = &Error{Status: http.StatusOK, Class: r.Error.Class, Message: r.Error.Message}
			}
		}
	}
	if err == nil && results == nil {
		err = fmt.Errorf("lvsd at %s: %d results for %d commands", c.socket, len(resp.Results), len(cmds))
	}
	return results, err
}

// Do applies one parsed ipvsadm command.
func (c *Client) Do(ctx context.Context, cmd ipvsadm.Command) error {
	res, err := c.Apply(ctx, []ipvsadm.Command{cmd})
	if err != nil {
		return err
	}
	return res[0]
}

// Service returns one service (GET /v1/services/{svc}).
func (c *Client) Service(ctx context.Context, k service.Key) (*ipvsadm.ServiceEntry, error) {
	e := new(ipvsadm.ServiceEntry)
	if err := c.do(ctx, http.MethodGet, "/v1/services/"+url.PathEscape(api.ServiceID(k)), nil, e); err != nil {
		return nil, err
	}
	return e, nil
}

// AddService adds a virtual service (ipvsadm -A).
func (c *Client) AddService(ctx context.Context, k service.Key, cfg service.Config) error {
	return c.do(ctx, http.MethodPost, "/v1/services", api.ServiceSpec{Key: api.Key(k), Config: api.ServiceConfig(cfg)}, nil)
}

// EditService replaces a service's configuration (ipvsadm -E).
func (c *Client) EditService(ctx context.Context, k service.Key, cfg service.Config) error {
	return c.do(ctx, http.MethodPut, "/v1/services/"+url.PathEscape(api.ServiceID(k)), api.ServiceConfig(cfg), nil)
}

// DeleteService deletes a service (ipvsadm -D).
func (c *Client) DeleteService(ctx context.Context, k service.Key) error {
	return c.do(ctx, http.MethodDelete, "/v1/services/"+url.PathEscape(api.ServiceID(k)), nil, nil)
}

func destPath(k service.Key, addr netip.Addr, port uint16) string {
	return "/v1/services/" + url.PathEscape(api.ServiceID(k)) + "/dests/" + url.PathEscape(api.DestID(addr, port))
}

// AddDest adds a real server (ipvsadm -a).
func (c *Client) AddDest(ctx context.Context, k service.Key, addr netip.Addr, port uint16, dc service.DestConfig) error {
	return c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(api.ServiceID(k))+"/dests",
		api.DestSpec{Addr: addr, Port: port, Config: api.DestConfig(dc)}, nil)
}

// EditDest replaces a real server's configuration (ipvsadm -e).
func (c *Client) EditDest(ctx context.Context, k service.Key, addr netip.Addr, port uint16, dc service.DestConfig) error {
	return c.do(ctx, http.MethodPut, destPath(k, addr, port), api.DestConfig(dc), nil)
}

// DeleteDest deletes a real server (ipvsadm -d).
func (c *Client) DeleteDest(ctx context.Context, k service.Key, addr netip.Addr, port uint16) error {
	return c.do(ctx, http.MethodDelete, destPath(k, addr, port), nil, nil)
}

// Zero zeroes the counters of the service k, or of everything if k is nil
// (ipvsadm -Z).
func (c *Client) Zero(ctx context.Context, k *service.Key) error {
	if k == nil {
		return c.do(ctx, http.MethodPost, "/v1/zero", nil, nil)
	}
	return c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(api.ServiceID(*k))+"/zero", nil, nil)
}

// Flush deletes every service (ipvsadm -C).
func (c *Client) Flush(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/flush", nil, nil)
}

// Timeouts returns the TCP, TCP FIN and UDP timeouts (ipvsadm -L --timeout).
func (c *Client) Timeouts(ctx context.Context) (api.Timeouts, error) {
	var t api.Timeouts
	err := c.do(ctx, http.MethodGet, "/v1/timeouts", nil, &t)
	return t, err
}

// SetTimeouts sets the timeouts; 0 leaves one unchanged (ipvsadm --set).
func (c *Client) SetTimeouts(ctx context.Context, t api.Timeouts) error {
	return c.do(ctx, http.MethodPut, "/v1/timeouts", t, nil)
}

// Settings returns the settings (the sysctls of /proc/sys/net/ipv4/vs).
func (c *Client) Settings(ctx context.Context) (api.Settings, error) {
	var s api.Settings
	err := c.do(ctx, http.MethodGet, "/v1/settings", nil, &s)
	return s, err
}

// SetSettings replaces the settings.
func (c *Client) SetSettings(ctx context.Context, s api.Settings) error {
	return c.do(ctx, http.MethodPut, "/v1/settings", s, nil)
}

// Reload makes lvsd read its configuration file again (as SIGHUP does)
// and returns the file's warnings. A bad file is an error wrapping
// api.ErrBadConfig, and lvsd keeps its configuration.
func (c *Client) Reload(ctx context.Context) ([]string, error) {
	var r api.ReloadResult
	err := c.do(ctx, http.MethodPost, "/v1/reload", nil, &r)
	return r.Warnings, err
}

// Health returns the state of the health checkers of the configuration
// file's real servers.
func (c *Client) Health(ctx context.Context) ([]api.RealServerHealth, error) {
	var h []api.RealServerHealth
	err := c.do(ctx, http.MethodGet, "/v1/health", nil, &h)
	return h, err
}
