package check

import (
	"context"
	"fmt"
	"net"
	"time"
)

// tcpProber is TCP_CHECK (keepalived/check/check_tcp.c): the check
// succeeds when a TCP connection to the target completes within
// connect_timeout; the connection is then closed without a byte sent.
type tcpProber struct {
	addr    string
	timeout time.Duration
	dialer  *net.Dialer
}

func newTCPProber(s *Spec, t Target) (*tcpProber, error) {
	ep, err := endpoint(s, t, true)
	if err != nil {
		return nil, err
	}
	return &tcpProber{addr: ep.String(), timeout: connectTimeout(s), dialer: dialer(s, "tcp", false)}, nil
}

// Probe implements Prober.
func (p *tcpProber) Probe(ctx context.Context) Result {
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	c, err := p.dialer.DialContext(pctx, "tcp", p.addr)
	if err != nil {
		r := failure(pctx, p.timeout, fmt.Errorf("connect %s: %w", p.addr, err))
		r.Start, r.Duration = start, time.Since(start)
		return r
	}
	c.Close()
	return Result{OK: true, Start: start, Duration: time.Since(start)}
}
