package check

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"time"
)

// Target is the real server a Monitor watches: its address and port as
// the real_server line gives them. A checker probes Spec.ConnectIP and
// Spec.ConnectPort when they are set, and the target otherwise.
type Target struct {
	Addr netip.Addr
	Port uint16
}

// String returns addr:port ([addr]:port for IPv6).
func (t Target) String() string { return netip.AddrPortFrom(t.Addr, t.Port).String() }

// NoWeight is the Weight of an Event, Status or CheckerStatus when no
// checker adjusts the real server's weight (no misc_dynamic MISC_CHECK, no
// weighted FILE_CHECK). It is outside every weight a checker can produce
// (adjustments are clamped to the int32 range).
const NoWeight = math.MinInt

// Result is what one probe saw. The zero Result is a failure without a
// reason; probes always set Err when OK is false.
type Result struct {
	// OK is the probe's verdict.
	OK bool
	// Err says why the probe failed (nil when OK). It wraps the sentinel
	// errors below where one applies, and the system error (for example
	// syscall.ECONNREFUSED) where there is one.
	Err error
	// Start is when the probe began and Duration how long it took.
	Start    time.Time
	Duration time.Duration

	// HTTPStatus is the status code of the last response an HTTP_GET or
	// SSL_GET probe read (0: none), and URL the path of the URL the probe
	// stopped at (the failing one, or the last one when all passed).
	HTTPStatus int
	URL        string
	// ExitStatus is a MISC_CHECK script's exit status (-1: killed by a
	// signal or never run).
	ExitStatus int
	// DynWeight, when DynWeightSet, is the weight the checker asks for:
	// for a misc_dynamic MISC_CHECK the real server's weight (exit status
	// - 2, keepalived's update_svr_wgt), for a FILE_CHECK with a weight
	// the adjustment to add to the configured weight (value x weight,
	// negated when reversed). The Monitor turns both into adjustments.
	DynWeight    int
	DynWeightSet bool
}

// Message returns the failure reason as text ("" when OK).
func (r Result) Message() string {
	if r.OK {
		return ""
	}
	if r.Err == nil {
		return "failed"
	}
	return r.Err.Error()
}

// Failure classes a Result's Err wraps (errors.Is).
var (
	// ErrTimeout: the probe did not finish within connect_timeout (or a
	// MISC_CHECK script within misc_timeout).
	ErrTimeout = errors.New("timed out")
	// ErrStatus: an HTTP status code outside the url's status_code ranges.
	ErrStatus = errors.New("HTTP status code not accepted")
	// ErrDigest: the MD5 digest of an HTTP body differs from the url's digest.
	ErrDigest = errors.New("MD5 digest mismatch")
	// ErrRegex: the body did not match the url's regex (or matched it
	// with regex_no_match).
	ErrRegex = errors.New("regex match failed")
	// ErrNoResponse: the server closed the connection before a complete
	// HTTP header (keepalived: "no data received").
	ErrNoResponse = errors.New("no HTTP response")
	// ErrReply: a reply that does not say "up": an SMTP code other than
	// the expected one, a DNS RCODE other than 0, a UDP reply that does not
	// match require_reply or its length bounds.
	ErrReply = errors.New("unexpected reply")
	// ErrExit: a MISC_CHECK script exited with a failure status or was
	// killed.
	ErrExit = errors.New("script failed")
	// ErrFileFault: a FILE_CHECK's value puts the checker in the fault
	// state.
	ErrFileFault = errors.New("tracked file in fault state")
	// ErrSockopt: a socket option (fwmark, bind_if) could not be set, for
	// example SO_MARK without CAP_NET_ADMIN.
	ErrSockopt = errors.New("cannot set socket option")
)

// failure builds a failed Result for an error err of a probe whose own
// context is pctx (the caller's context with the probe's timeout). When
// the timeout ran out (pctx's deadline, or a socket deadline set from it,
// which may fire a moment before the context notices), err is reported as
// ErrTimeout wrapping it; not when the caller cancelled.
func failure(pctx context.Context, timeout time.Duration, err error) Result {
	expired := errors.Is(pctx.Err(), context.DeadlineExceeded) ||
		(!errors.Is(pctx.Err(), context.Canceled) &&
			(errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)))
	if expired && !errors.Is(err, ErrTimeout) {
		err = fmt.Errorf("%w after %v: %w", ErrTimeout, timeout, err)
	}
	return Result{Err: err}
}
