package check

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// udpProber is UDP_CHECK (keepalived/check/check_udp.c): send the payload
// (random bytes when none is configured) on a connected UDP socket with
// IP_RECVERR, then
//
//   - with require_reply: succeed on a reply whose length is within
//     [min_reply_length, max_reply_length] and that matches the
//     require_reply bytes (matchReply); an ICMP error, a reply that does
//     not match, or no reply within connect_timeout fail;
//   - without it: fail on an ICMP error (port, host or network
//     unreachable) and succeed otherwise: on any reply, or when
//     connect_timeout passes in silence. Such a probe lasts
//     connect_timeout when the server stays silent.
type udpProber struct {
	addr     string
	timeout  time.Duration
	dialer   *net.Dialer
	payload  []byte // nil: random
	require  bool
	want     []byte
	mask     []byte
	min, max int
}

// randomPayloadLen is the size of the random payload sent when none is
// configured (keepalived sends a buffer of UDP_BUFSIZE random bytes; the
// exact size matters to no server).
const randomPayloadLen = 32

// defaultMaxReply is max_reply_length's default (check_udp.c: UINT8_MAX).
const defaultMaxReply = 255

func newUDPProber(s *Spec, t Target) (*udpProber, error) {
	ep, err := endpoint(s, t, true)
	if err != nil {
		return nil, err
	}
	p := &udpProber{addr: ep.String(), timeout: connectTimeout(s), dialer: dialer(s, "udp", true),
		payload: s.Payload, require: s.RequireReplySet, want: s.RequireReply, mask: s.RequireReplyMask,
		min: s.MinReplyLength, max: s.MaxReplyLength}
	if p.max <= 0 {
		// The Spec's zero value would make every require_reply check
		// fail; read it as "not configured".
		p.max = defaultMaxReply
	}
	return p, nil
}

// Probe implements Prober.
func (p *udpProber) Probe(ctx context.Context) Result {
	start := time.Now()
	r := p.exchange(ctx)
	r.Start, r.Duration = start, time.Since(start)
	return r
}

func (p *udpProber) exchange(ctx context.Context) Result {
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	fail := func(err error) Result { return failure(pctx, p.timeout, err) }

	payload := p.payload
	if payload == nil {
		payload = make([]byte, randomPayloadLen)
		rand.Read(payload)
	}
	c, err := p.dialer.DialContext(pctx, "udp", p.addr)
	if err != nil {
		return fail(fmt.Errorf("connect %s: %w", p.addr, err))
	}
	defer c.Close()
	stop := abortOnDone(pctx, c)
	defer stop()
	if _, err := c.Write(payload); err != nil {
		return fail(fmt.Errorf("send to %s: %w", p.addr, err))
	}
	// One byte more than the longest acceptable reply, so that a longer
	// one is seen as too long (a datagram is cut to the buffer).
	buf := make([]byte, p.max+1)
	n, err := c.Read(buf)
	if err != nil {
		// The socket's deadline is the probe's: only the caller's cancel
		// (ctx done) can set it earlier.
		silent := errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil
		if silent && !p.require {
			return Result{OK: true}
		}
		if silent {
			return fail(fmt.Errorf("no reply from %s: %w", p.addr, err))
		}
		return fail(fmt.Errorf("read from %s: %w", p.addr, err))
	}
	if p.require {
		if err := matchReply(buf[:n], p.want, p.mask, p.min, p.max); err != nil {
			return Result{Err: fmt.Errorf("reply from %s: %w", p.addr, err)}
		}
	}
	return Result{OK: true}
}

// matchReply checks a UDP_CHECK reply against require_reply:
// its length within [min, max], then its first min(len(reply), len(want))
// bytes equal to want's in the bits mask[i] says must match (0: an "XX"
// wildcard byte, 0xf0/0x0f: one wildcard nibble; a nil or short mask:
// the whole byte must match). keepalived's check_udp_reply
// compares only that common prefix, so a reply shorter than want can
// match. The man page has the length bounds apply whenever require_reply
// is set; check_udp.c tests them only when require_reply has data. This
// follows the man page.
func matchReply(reply, want []byte, mask []byte, min, max int) error {
	if len(reply) < min || len(reply) > max {
		return fmt.Errorf("%w: length %d outside [%d, %d]", ErrReply, len(reply), min, max)
	}
	n := len(want)
	if len(reply) < n {
		n = len(reply)
	}
	for i := range n {
		m := byte(0xff)
		if i < len(mask) {
			m = mask[i]
		}
		if (reply[i]^want[i])&m != 0 {
			return fmt.Errorf("%w: byte %d is %#02x, want %#02x", ErrReply, i, reply[i], want[i])
		}
	}
	return nil
}
