package nslab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The client's traffic: modest and bounded, so that the lab costs the
// machine nothing yet every service shows answers every display period.
const (
	httpEvery   = 50 * time.Millisecond  // 20 HTTP requests a second, spread over NAT, DR and TUN
	udpEvery    = 250 * time.Millisecond // 4 UDP echoes a second
	reqTimeout  = 2 * time.Second        // one request or echo, answer included
	maxInFlight = 32                     // requests beyond this wait for the next tick (counted as skipped)
)

// Window is what the client saw of one service over a period.
type Window struct {
	Answers map[string]int `json:"answers"` // by real server name
	Errors  int            `json:"errors"`
	LastErr string         `json:"last_error,omitempty"`
}

func (w *Window) add(name string, err error) {
	if err != nil {
		w.Errors++
		w.LastErr = shortErr(err)
		return
	}
	if w.Answers == nil {
		w.Answers = map[string]int{}
	}
	w.Answers[name]++
}

// shortErr keeps what a user needs of a client error: "connection
// refused", "i/o timeout"...
func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// client sends the lab's traffic from the client namespace and counts
// the answers.
type client struct {
	ns   string
	http *http.Client

	mu      sync.Mutex
	total   map[string]*Window // by service name, since the start
	window  map[string]*Window // since the last take
	skipped int
}

func newClient(ns string) *client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialIn(ctx, ns, network, addr, reqTimeout)
	}
	return &client{
		ns: ns,
		http: &http.Client{
			Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true},
			Timeout:   reqTimeout,
		},
		total:  map[string]*Window{},
		window: map[string]*Window{},
	}
}

// run sends requests until ctx ends and returns once none is in flight.
func (c *client) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.http.CloseIdleConnections()
	sem := make(chan struct{}, maxInFlight)
	httpTick := time.NewTicker(httpEvery)
	defer httpTick.Stop()
	udpTick := time.NewTicker(udpEvery)
	defer udpTick.Stop()
	var httpSvcs []Service
	var udpSvc Service
	for _, s := range Services {
		if s.Proto == "udp" {
			udpSvc = s
		} else {
			httpSvcs = append(httpSvcs, s)
		}
	}
	next, seq := 0, 0
	launch := func(svc Service, f func(context.Context, Service) (string, error)) {
		select {
		case sem <- struct{}{}:
		default:
			c.mu.Lock()
			c.skipped++
			c.mu.Unlock()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			name, err := f(ctx, svc)
			if ctx.Err() != nil {
				return // stopping: not the service's failure
			}
			c.record(svc.Name, name, err)
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-httpTick.C:
			launch(httpSvcs[next%len(httpSvcs)], c.get)
			next++
		case <-udpTick.C:
			seq++
			n := seq
			launch(udpSvc, func(ctx context.Context, s Service) (string, error) { return c.echo(ctx, s, n) })
		}
	}
}

func (c *client) record(svc, name string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range []map[string]*Window{c.total, c.window} {
		w := m[svc]
		if w == nil {
			w = &Window{}
			m[svc] = w
		}
		w.add(name, err)
	}
}

// take returns the counts since the last take, and the requests skipped.
func (c *client) take() (map[string]Window, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]Window{}
	for k, w := range c.window {
		out[k] = *w
	}
	c.window = map[string]*Window{}
	s := c.skipped
	c.skipped = 0
	return out, s
}

// totals returns a copy of the counts since the start.
func (c *client) totals() map[string]Window {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]Window{}
	for k, w := range c.total {
		cp := Window{Errors: w.Errors, LastErr: w.LastErr, Answers: map[string]int{}}
		for n, v := range w.Answers {
			cp.Answers[n] = v
		}
		out[k] = cp
	}
	return out
}

// get requests http://VIP:port/ on a new connection and returns the
// answering server's name.
func (c *client) get(ctx context.Context, svc Service) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+svc.VAddr().String()+"/", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP status %s", resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

// echo sends one datagram from a new socket (so that IPVS schedules a
// new connection) and returns the answering server's name.
func (c *client) echo(ctx context.Context, svc Service, n int) (string, error) {
	conn, err := dialIn(ctx, c.ns, "udp4", svc.VAddr().String(), reqTimeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(reqTimeout))
	msg := fmt.Sprintf("ping %d", n)
	if _, err := conn.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	k, err := conn.Read(buf)
	if err != nil {
		return "", err
	}
	name, rest, _ := strings.Cut(string(buf[:k]), " ")
	if rest != msg {
		return "", fmt.Errorf("echo %q, want \"NAME %s\"", buf[:k], msg)
	}
	return name, nil
}
