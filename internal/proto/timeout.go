package proto

import (
	"errors"
	"time"
)

// InitialTimeout is the timeout of a connection that has just been created
// (ip_vs_conn_new sets cp->timeout = 3*HZ), before its first packet has been
// through the state machine.
const InitialTimeout = 3 * time.Second

// MaxTimeout is the largest value ipvsadm --set can give a timeout: the
// kernel refuses seconds above INT_MAX/HZ with EINVAL (ip_vs_set_timeout),
// and Debian's 6.1 amd64 kernel (the oracle) has HZ=250, so
// 2147483647/250 = 8589934 s.
const MaxTimeout = 8589934 * time.Second

// sctpMaxRTO is IP_VS_SCTP_MAX_RTO, (60 + 1) s: RFC 9260's RTO.Max of 60 s
// plus one second, the timeout of every SCTP handshake and shutdown state.
const sctpMaxRTO = 61 * time.Second

// sctpInitTimeout is the timeout of INIT1 and REJECTED, (0 + 3 + 1) s in the
// kernel: RFC 9260's RTO.Initial of 3 s plus one second, so a dropped or
// rejected INIT does not hold a connection entry for long.
const sctpInitTimeout = 4 * time.Second

// ErrTimeoutRange is returned by Set for a negative timeout or one above
// MaxTimeout (the kernel's EINVAL).
var ErrTimeoutRange = errors.New("timeout out of range")

// Timeouts is the per-state timeout table of one IPVS instance (the kernel
// keeps one per network namespace in ip_vs_proto_data.timeout_table). It is
// a plain value: obtain one from DefaultTimeouts (the zero value has every
// timeout 0). It is not safe to Set while other goroutines read it; the
// intended use is copy-on-write behind an atomic.Pointer (copy, Set, Store).
type Timeouts struct {
	tcp  [numTCPStates]time.Duration
	sctp [numSCTPStates]time.Duration
	udp  time.Duration
}

// DefaultTimeouts returns the kernel's default timeouts (tcp_timeouts,
// sctp_timeouts, udp_timeouts), which are also what `ipvsadm --set 900 120
// 300` restores.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		tcp: [numTCPStates]time.Duration{
			TCPNone:        2 * time.Second,
			TCPEstablished: 15 * time.Minute,
			TCPSynSent:     2 * time.Minute,
			TCPSynRecv:     1 * time.Minute,
			TCPFinWait:     2 * time.Minute,
			TCPTimeWait:    2 * time.Minute,
			TCPClose:       10 * time.Second,
			TCPCloseWait:   60 * time.Second,
			TCPLastAck:     30 * time.Second,
			TCPListen:      2 * time.Minute,
			TCPSynAck:      120 * time.Second,
		},
		sctp: [numSCTPStates]time.Duration{
			SCTPNone:             2 * time.Second,
			SCTPInit1:            sctpInitTimeout,
			SCTPInit:             sctpMaxRTO,
			SCTPCookieSent:       sctpMaxRTO,
			SCTPCookieReplied:    sctpMaxRTO,
			SCTPCookieWait:       sctpMaxRTO,
			SCTPCookie:           sctpMaxRTO,
			SCTPCookieEchoed:     sctpMaxRTO,
			SCTPEstablished:      15 * time.Minute,
			SCTPShutdownSent:     sctpMaxRTO,
			SCTPShutdownReceived: sctpMaxRTO,
			SCTPShutdownAckSent:  sctpMaxRTO,
			SCTPRejected:         sctpInitTimeout,
			SCTPClosed:           sctpMaxRTO,
		},
		udp: 5 * time.Minute,
	}
}

// lastTimeout is the kernel's entry for index IP_VS_*_S_LAST (2 s in the TCP
// and SCTP tables), which For returns for a state outside the table.
const lastTimeout = 2 * time.Second

// For returns the timeout of a connection of proto in state s, the value the
// kernel assigns after every packet. UDP has one timeout whatever s is.
// Protocols without a state machine give 0.
func (t *Timeouts) For(proto uint8, s State) time.Duration {
	switch proto {
	case TCP:
		if s < numTCPStates {
			return t.tcp[s]
		}
		return lastTimeout
	case UDP:
		return t.udp
	case SCTP:
		if s < numSCTPStates {
			return t.sctp[s]
		}
		return lastTimeout
	}
	return 0
}

// Set is `ipvsadm --set tcp tcpfin udp` (ip_vs_set_timeout): tcp sets the
// TCP ESTABLISHED timeout, tcpfin the TCP FIN_WAIT timeout, udp the UDP
// timeout; a zero value leaves that timeout unchanged, and nothing else
// (CLOSE_WAIT, TIME_WAIT, SCTP, ...) can be changed. A negative value or one
// above MaxTimeout rejects the whole call with ErrTimeoutRange and changes
// nothing. The kernel ABI carries whole seconds; so should the arguments.
func (t *Timeouts) Set(tcp, tcpfin, udp time.Duration) error {
	for _, v := range [...]time.Duration{tcp, tcpfin, udp} {
		if v < 0 || v > MaxTimeout {
			return ErrTimeoutRange
		}
	}
	if tcp != 0 {
		t.tcp[TCPEstablished] = tcp
	}
	if tcpfin != 0 {
		t.tcp[TCPFinWait] = tcpfin
	}
	if udp != 0 {
		t.udp = udp
	}
	return nil
}

// Get returns the three values `ipvsadm -L --timeout` prints: the TCP
// ESTABLISHED, TCP FIN_WAIT and UDP timeouts (__ip_vs_get_timeouts).
func (t *Timeouts) Get() (tcp, tcpfin, udp time.Duration) {
	return t.tcp[TCPEstablished], t.tcp[TCPFinWait], t.udp
}
