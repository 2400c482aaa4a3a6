package lvslab

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// TCP (RFC 9293), enough of it to carry request/response traffic through a
// load balancer and to notice when the balancer gets it wrong:
//
//   - three-way handshake with the MSS option (no window scaling, SACK or
//     timestamps: SYNs carry MSS only);
//   - in-order data with cumulative ACKs, every data segment ACKed at once
//     (no delayed ACK); out-of-order segments are dropped and re-ACKed;
//   - a fixed 65535-byte receive window, honoured by the sender;
//   - retransmission on a timer with exponential backoff: after a timeout
//     the first unacknowledged segment is resent, and each partial ACK
//     resends the next one (RFC 6582 NewReno-style recovery);
//   - FIN in either order, simultaneous close, TIME_WAIT, RST on a closed
//     port, RST and challenge ACKs after RFC 5961;
//   - path MTU discovery (RFC 1191, RFC 8201): data is sent with DF, and a
//     frag-needed or packet-too-big lowers the MSS and resends at once
//     (Linux tcp_v4_mtu_reduced → tcp_simple_retransmit).
//
// The transport header, as the lab writes it (data offset 5, or 6 with the
// MSS option on a SYN):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	|                        Sequence Number                        |
//	|                    Acknowledgment Number                      |
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|           Checksum            |         Urgent Pointer        |
//	|  Kind=2  | Length=4 |      Maximum Segment Size (SYN only)    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	// tcpWindow is the receive window every lab socket advertises: the
	// largest without window scaling (RFC 7323), and more than any lab
	// transfer keeps in flight.
	tcpWindow = 65535
	// tcpDefaultMSS is assumed when a SYN has no MSS option
	// (RFC 9293 §3.7.1: 536 for IPv4, 1220 for IPv6).
	tcpDefaultMSS4 = 536
	tcpDefaultMSS6 = 1220

	// tcpSynRTO is the initial retransmission timeout (RFC 6298 §2.1,
	// Linux TCP_TIMEOUT_INIT).
	tcpSynRTO = time.Second
	// tcpRTO is the timeout once connected: the lab's links have no delay,
	// so Linux's smoothed RTT estimate bottoms out at TCP_RTO_MIN, 200 ms.
	tcpRTO = 200 * time.Millisecond
	// tcpRTOMax caps the backoff (Linux TCP_RTO_MAX).
	tcpRTOMax = 120 * time.Second
	// Retries before giving up: net.ipv4.tcp_syn_retries,
	// tcp_synack_retries and tcp_retries2 (Linux counts the last by time;
	// 15 backed-off retries is what it amounts to).
	tcpSynRetries    = 6
	tcpSynAckRetries = 5
	tcpDataRetries   = 15
	// tcpTimeWait is 2*MSL as Linux sets it (TCP_TIMEWAIT_LEN).
	tcpTimeWait = 60 * time.Second
)

// TCPState is a connection state (RFC 9293 §3.3.2).
//
//	                     Dial                    Listen+SYN
//	CLOSED ──────────▶ SYN_SENT           ─────────────▶ SYN_RCVD
//	                     │ rcv SYN,ACK / snd ACK           │ rcv ACK
//	                     ▼                                 ▼
//	                  ESTABLISHED ◀───────────────────────────
//	       Close/snd FIN │                 │ rcv FIN / snd ACK
//	                     ▼                 ▼
//	                FIN_WAIT_1        CLOSE_WAIT
//	   rcv ACK of FIN ┌──┴──┐ rcv FIN      │ Close / snd FIN
//	                  ▼     ▼              ▼
//	            FIN_WAIT_2  CLOSING      LAST_ACK
//	     rcv FIN      │     │ rcv ACK      │ rcv ACK of FIN
//	                  ▼     ▼              ▼
//	                 TIME_WAIT ──60 s──▶ CLOSED
type TCPState uint8

// TCP states.
const (
	TCPClosed TCPState = iota
	TCPSynSent
	TCPSynReceived
	TCPEstablished
	TCPFinWait1
	TCPFinWait2
	TCPCloseWait
	TCPClosing
	TCPLastAck
	TCPTimeWait
)

var tcpStateNames = [...]string{"CLOSED", "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT"}

// String returns the state's name as netstat prints it.
func (s TCPState) String() string {
	if int(s) < len(tcpStateNames) {
		return tcpStateNames[s]
	}
	return fmt.Sprintf("TCPState(%d)", uint8(s))
}

// TCPEvent tells a handler what happened on a connection.
type TCPEvent uint8

// TCP events, each delivered at most once per connection except Data.
const (
	TCPEventEstablished TCPEvent = iota + 1 // handshake complete
	TCPEventData                            // new bytes in Received
	TCPEventPeerClosed                      // the peer sent FIN: no more data
	TCPEventClosed                          // the connection is gone; Err says why
)

// String names the event.
func (e TCPEvent) String() string {
	switch e {
	case TCPEventEstablished:
		return "established"
	case TCPEventData:
		return "data"
	case TCPEventPeerClosed:
		return "peer-closed"
	case TCPEventClosed:
		return "closed"
	}
	return fmt.Sprintf("TCPEvent(%d)", uint8(e))
}

// TCPHandler is called synchronously, during delivery, for each event of a
// connection. It may Write, Close or Abort.
type TCPHandler func(c *TCPConn, ev TCPEvent)

// ReplyAndClose returns a server handler that answers the first data it
// receives with reply and closes: a real server that names itself.
func ReplyAndClose(reply []byte) TCPHandler {
	return func(c *TCPConn, ev TCPEvent) {
		switch ev {
		case TCPEventData:
			if c.sentBytes == 0 && !c.closeReq {
				_, _ = c.Write(reply)
				_ = c.Close()
			}
		case TCPEventPeerClosed:
			_ = c.Close()
		}
	}
}

// EchoTCP is a server handler that echoes what it receives and closes when
// the peer does.
func EchoTCP(c *TCPConn, ev TCPEvent) {
	switch ev {
	case TCPEventData:
		_, _ = c.Write(c.NewData())
	case TCPEventPeerClosed:
		_ = c.Close()
	}
}

// Connection errors.
var (
	ErrConnRefused = errors.New("lvslab: connection refused")
	ErrConnReset   = errors.New("lvslab: connection reset by peer")
	ErrTimeout     = errors.New("lvslab: connection timed out")
	ErrAborted     = errors.New("lvslab: connection aborted")
	ErrNotOpen     = errors.New("lvslab: connection not open for writing")
)

type tcpKey struct {
	local, remote netip.AddrPort
}

// TCPListener accepts connections on an address.
type TCPListener struct {
	h       *Host
	laddr   netip.AddrPort
	handler TCPHandler
	conns   []*TCPConn
	closed  bool
}

// ListenTCP listens on laddr (address unspecified: every local address of
// the family; the zero Addr: both families), running handler for every
// connection it accepts.
func (h *Host) ListenTCP(laddr netip.AddrPort, handler TCPHandler) (*TCPListener, error) {
	laddr = netip.AddrPortFrom(laddr.Addr().Unmap(), laddr.Port())
	if laddr.Port() == 0 {
		return nil, fmt.Errorf("lvslab: %s: tcp listen on port 0", h.name)
	}
	if _, dup := h.tcpListeners[laddr]; dup {
		return nil, fmt.Errorf("lvslab: %s: tcp listen %v: %w", h.name, laddr, ErrAddrInUse)
	}
	l := &TCPListener{h: h, laddr: laddr, handler: handler}
	h.tcpListeners[laddr] = l
	return l, nil
}

// Addr returns the listening address.
func (l *TCPListener) Addr() netip.AddrPort { return l.laddr }

// Conns returns the connections accepted so far (from SYN_RCVD on).
func (l *TCPListener) Conns() []*TCPConn { return append([]*TCPConn(nil), l.conns...) }

// Close stops listening; accepted connections carry on.
func (l *TCPListener) Close() {
	if !l.closed {
		l.closed = true
		delete(l.h.tcpListeners, l.laddr)
	}
}

func (h *Host) tcpListenerFor(a netip.Addr, port uint16) *TCPListener {
	if l := h.tcpListeners[netip.AddrPortFrom(a, port)]; l != nil {
		return l
	}
	wild := netip.IPv4Unspecified()
	if a.Is6() {
		wild = netip.IPv6Unspecified()
	}
	if l := h.tcpListeners[netip.AddrPortFrom(wild, port)]; l != nil {
		return l
	}
	return h.tcpListeners[netip.AddrPortFrom(netip.Addr{}, port)]
}

// TCPConn is one end of a TCP connection.
type TCPConn struct {
	h        *Host
	key      tcpKey
	handler  TCPHandler
	state    TCPState
	listener *TCPListener

	// Send side. Before the SYN is acknowledged sndUna is the ISS; after,
	// sendBuf holds the bytes from sndUna on, and a FIN (once Close was
	// called) follows them at sequence finSeq().
	iss       uint32
	sndUna    uint32
	sndNxt    uint32
	sndWnd    uint32
	sendBuf   []byte
	sentBytes int // bytes ever written
	closeReq  bool
	finAcked  bool
	synAcked  bool
	peerMSS   int

	// pmtu is the path MTU the send MSS was last sized for (Linux
	// icsk_pmtu_cookie): only a frag-needed below it triggers a resend.
	pmtu int

	// Retransmission.
	rtx         *timer
	rto         time.Duration
	retries     int
	recovering  bool
	recover     uint32 // sndNxt when recovery started
	retransmits int

	// Receive side.
	irs     uint32
	rcvNxt  uint32
	recv    []byte
	peerFin bool

	twTimer    *timer
	ackPending bool
	err        error
	reset      bool
	icmpErrs   []ICMPError
	closedSent bool
	newFrom    int // start of the bytes the latest TCPEventData announced
}

// DialTCP opens a connection from laddr (address zero or unspecified:
// chosen by the route; port 0: ephemeral) to raddr and sends the SYN.
// Drain to complete the handshake; handler (may be nil) sees the events.
func (h *Host) DialTCP(laddr, raddr netip.AddrPort, handler TCPHandler) (*TCPConn, error) {
	dst := raddr.Addr().Unmap()
	raddr = netip.AddrPortFrom(dst, raddr.Port())
	src := laddr.Addr().Unmap()
	if !src.IsValid() || src.IsUnspecified() {
		var ok bool
		if src, ok = h.SourceAddr(dst); !ok {
			return nil, fmt.Errorf("lvslab: %s: dial %v: %w", h.name, raddr, ErrNoRoute)
		}
	}
	if src.Is4() != dst.Is4() {
		return nil, fmt.Errorf("lvslab: %s: dial %v from %v: address families differ", h.name, raddr, src)
	}
	port := laddr.Port()
	if port == 0 {
		port = h.ephemeralPort()
	}
	k := tcpKey{local: netip.AddrPortFrom(src, port), remote: raddr}
	if old, dup := h.tcpConns[k]; dup {
		if old.state != TCPTimeWait {
			return nil, fmt.Errorf("lvslab: %s: dial %v from %v: %w", h.name, raddr, k.local, ErrAddrInUse)
		}
		// Reusing a 4-tuple in TIME_WAIT, as Linux allows with
		// tcp_tw_reuse: the old connection goes (the new ISN is random,
		// so the peer may take the SYN as a retransmission; tests that
		// reuse ports on purpose want exactly that).
		old.finish(nil)
	}
	c := h.newTCPConn(k, handler)
	c.state = TCPSynSent
	c.sndNxt = c.iss + 1
	c.sendSeg(c.iss, tcpSYN, nil)
	c.armRTX()
	return c, nil
}

func (h *Host) newTCPConn(k tcpKey, handler TCPHandler) *TCPConn {
	c := &TCPConn{h: h, key: k, handler: handler, rto: tcpSynRTO}
	c.iss = h.rng.Uint32()
	c.sndUna = c.iss
	c.pmtu = h.PathMTU(k.remote.Addr())
	h.tcpConns[k] = c
	return c
}

// TCPConns returns the host's connections that are not yet closed,
// ordered by local then remote address.
func (h *Host) TCPConns() []*TCPConn {
	out := make([]*TCPConn, 0, len(h.tcpConns))
	for _, c := range h.tcpConns {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *TCPConn) int {
		if c := a.key.local.Compare(b.key.local); c != 0 {
			return c
		}
		return a.key.remote.Compare(b.key.remote)
	})
	return out
}

// State returns the connection state.
func (c *TCPConn) State() TCPState { return c.state }

// LocalAddr returns the local address and port.
func (c *TCPConn) LocalAddr() netip.AddrPort { return c.key.local }

// RemoteAddr returns the peer's address and port.
func (c *TCPConn) RemoteAddr() netip.AddrPort { return c.key.remote }

// Received returns every byte received so far, in order. The slice is the
// connection's; do not modify it.
func (c *TCPConn) Received() []byte { return c.recv }

// NewData returns the bytes that arrived with the latest TCPEventData (a
// suffix of Received).
func (c *TCPConn) NewData() []byte { return c.recv[c.newFrom:] }

// PeerClosed reports whether the peer's FIN arrived.
func (c *TCPConn) PeerClosed() bool { return c.peerFin }

// WasReset reports whether the peer reset the connection.
func (c *TCPConn) WasReset() bool { return c.reset }

// Err returns why a closed connection closed (nil for an orderly close or
// while open): ErrConnRefused, ErrConnReset, ErrTimeout, ErrAborted, or an
// *ICMPError for a connect that met a hard ICMP error.
func (c *TCPConn) Err() error { return c.err }

// ICMPErrors returns the ICMP errors received about the connection.
func (c *TCPConn) ICMPErrors() []ICMPError { return append([]ICMPError(nil), c.icmpErrs...) }

// Retransmits returns how many segments were sent again after a timeout
// or a PMTU reduction.
func (c *TCPConn) Retransmits() int { return c.retransmits }

// MSS returns the current send MSS: the peer's, lowered to fit the path
// MTU.
func (c *TCPConn) MSS() int { return c.sendMSS() }

// Unacked returns how many bytes written are not yet acknowledged.
func (c *TCPConn) Unacked() int { return len(c.sendBuf) }

// Write queues b for sending and sends what the window allows.
func (c *TCPConn) Write(b []byte) (int, error) {
	switch c.state {
	case TCPSynSent, TCPSynReceived, TCPEstablished, TCPCloseWait:
	default:
		return 0, ErrNotOpen
	}
	if c.closeReq {
		return 0, ErrNotOpen
	}
	c.sendBuf = append(c.sendBuf, b...)
	c.sentBytes += len(b)
	c.output()
	return len(b), nil
}

// Close sends a FIN after the queued data (a half close: data from the
// peer is still received).
func (c *TCPConn) Close() error {
	switch c.state {
	case TCPSynSent:
		c.finish(nil)
		return nil
	case TCPSynReceived:
		// The FIN follows the handshake: input moves to FIN_WAIT_1
		// when the SYN is acknowledged.
		c.closeReq = true
		return nil
	case TCPEstablished:
		if !c.closeReq {
			c.closeReq = true
			c.state = TCPFinWait1
			c.output()
		}
		return nil
	case TCPCloseWait:
		c.closeReq = true
		c.state = TCPLastAck
		c.output()
		return nil
	}
	return nil
}

// Abort resets the connection (SO_LINGER 0 then close).
func (c *TCPConn) Abort() {
	switch c.state {
	case TCPClosed, TCPTimeWait:
		return
	case TCPSynSent:
		c.finish(ErrAborted)
		return
	}
	c.sendSeg(c.sndNxt, tcpRST|tcpACK, nil)
	c.finish(ErrAborted)
}

// advMSS is the MSS this end announces: the outgoing interface's MTU less
// the headers (Linux tcp_advertise_mss from the route's advmss).
func (c *TCPConn) advMSS() int {
	mtu := c.h.PathMTU(c.key.remote.Addr())
	if r, ok := c.h.lookup(c.key.remote.Addr()); ok && !c.h.IsLocal(c.key.remote.Addr()) {
		mtu = c.h.Interface(r.IfIndex).MTU()
	}
	return min(mtu-c.hdrLen(), 65535)
}

func (c *TCPConn) hdrLen() int {
	if c.key.remote.Addr().Is6() {
		return ipv6HdrLen + tcpHdrLen
	}
	return ipv4HdrLen + tcpHdrLen
}

// sendMSS is the largest segment payload to send: the peer's MSS, less
// what the path MTU allows.
func (c *TCPConn) sendMSS() int {
	mss := c.peerMSS
	if mss == 0 {
		mss = tcpDefaultMSS4
		if c.key.remote.Addr().Is6() {
			mss = tcpDefaultMSS6
		}
	}
	if p := c.h.PathMTU(c.key.remote.Addr()) - c.hdrLen(); p > 0 && p < mss {
		mss = p
	}
	return max(mss, 1)
}

// finSeq is the sequence number of the FIN (the end of the queued data).
func (c *TCPConn) finSeq() uint32 { return c.sndUna + uint32(len(c.sendBuf)) }

// sendSeg builds and sends one segment. Every segment but the first SYN
// carries an ACK of everything received.
func (c *TCPConn) sendSeg(seq uint32, flags uint8, data []byte) {
	hl := tcpHdrLen
	if flags&tcpSYN != 0 {
		hl += 4 // MSS option
	}
	seg := make([]byte, hl+len(data))
	put16(seg[0:], c.key.local.Port())
	put16(seg[2:], c.key.remote.Port())
	put32(seg[4:], seq)
	if flags&tcpACK != 0 {
		put32(seg[8:], c.rcvNxt)
		c.ackPending = false
	}
	seg[12] = byte(hl/4) << 4
	seg[13] = flags
	put16(seg[14:], tcpWindow)
	if flags&tcpSYN != 0 {
		seg[20], seg[21] = 2, 4 // kind MSS, length 4
		put16(seg[22:], uint16(c.advMSS()))
	}
	copy(seg[hl:], data)
	src, dst := c.key.local.Addr(), c.key.remote.Addr()
	put16(seg[16:], l4Checksum(src, dst, protoTCP, seg))
	// Linux sends TCP with DF (IP_PMTUDISC_WANT with a known PMTU).
	_ = c.h.sendIP(src, dst, protoTCP, seg, dst.Is4())
}

// output sends queued data and the FIN as far as the window allows.
func (c *TCPConn) output() {
	if !c.synAcked {
		return
	}
	switch c.state {
	case TCPEstablished, TCPCloseWait, TCPFinWait1, TCPClosing, TCPLastAck:
	default:
		return
	}
	mss := uint32(c.sendMSS())
	end := c.finSeq()
	for seqLT(c.sndNxt, end) {
		inflight := c.sndNxt - c.sndUna
		if inflight >= c.sndWnd {
			break
		}
		n := min(end-c.sndNxt, mss, c.sndWnd-inflight)
		off := c.sndNxt - c.sndUna
		flags := uint8(tcpACK | tcpPSH)
		fin := c.closeReq && c.sndNxt+n == end
		if fin {
			flags |= tcpFIN
		}
		c.sendSeg(c.sndNxt, flags, c.sendBuf[off:off+n])
		c.sndNxt += n
		if fin {
			c.sndNxt++
		}
	}
	if c.closeReq && !c.finAcked && c.sndNxt == end {
		c.sendSeg(c.sndNxt, tcpACK|tcpFIN, nil)
		c.sndNxt++
	}
	if c.sndNxt != c.sndUna && !c.rtx.armed() {
		c.armRTX()
	}
}

// retransmitHead resends the first unacknowledged segment.
func (c *TCPConn) retransmitHead() {
	c.retransmits++
	switch c.state {
	case TCPSynSent:
		c.sendSeg(c.iss, tcpSYN, nil)
		return
	case TCPSynReceived:
		if !c.synAcked {
			c.sendSeg(c.iss, tcpSYN|tcpACK, nil)
			return
		}
	}
	n := min(len(c.sendBuf), c.sendMSS())
	flags := uint8(tcpACK)
	if n > 0 {
		flags |= tcpPSH
	}
	if c.closeReq && n == len(c.sendBuf) && c.sndNxt == c.finSeq()+1 {
		flags |= tcpFIN
	}
	if n == 0 && flags&tcpFIN == 0 {
		return
	}
	c.sendSeg(c.sndUna, flags, c.sendBuf[:n])
}

func (c *TCPConn) armRTX() {
	if c.rtx == nil {
		c.rtx = c.h.n.afterFunc(c.rto, c.onRTO)
		return
	}
	c.h.n.resetTimer(c.rtx, c.rto)
}

// onRTO is the retransmission timer (Linux tcp_retransmit_timer).
func (c *TCPConn) onRTO() {
	if c.state == TCPClosed || c.sndUna == c.sndNxt {
		return
	}
	c.retries++
	limit := tcpDataRetries
	switch c.state {
	case TCPSynSent:
		limit = tcpSynRetries
	case TCPSynReceived:
		limit = tcpSynAckRetries
	}
	if c.retries > limit {
		c.finish(ErrTimeout)
		return
	}
	c.rto = min(c.rto*2, tcpRTOMax)
	c.recovering, c.recover = true, c.sndNxt
	c.retransmitHead()
	c.armRTX()
}

// finish closes the connection for good.
func (c *TCPConn) finish(err error) {
	if c.state == TCPClosed {
		return
	}
	c.state = TCPClosed
	c.err = err
	c.h.n.stopTimer(c.rtx)
	c.h.n.stopTimer(c.twTimer)
	if c.h.tcpConns[c.key] == c {
		delete(c.h.tcpConns, c.key)
	}
	c.event(TCPEventClosed)
}

func (c *TCPConn) event(ev TCPEvent) {
	if ev == TCPEventClosed {
		if c.closedSent {
			return
		}
		c.closedSent = true
	}
	if c.handler != nil {
		c.handler(c, ev)
	}
}

func (c *TCPConn) enterTimeWait() {
	c.state = TCPTimeWait
	c.h.n.stopTimer(c.rtx)
	if c.twTimer == nil {
		c.twTimer = c.h.n.afterFunc(tcpTimeWait, func() { c.finish(nil) })
	} else {
		c.h.n.resetTimer(c.twTimer, tcpTimeWait)
	}
}

// tcpInput demultiplexes a segment (checksum already verified).
func (h *Host) tcpInput(pkt []byte, ip ipHdr, l4 []byte) {
	s, ok := parseTCP(l4)
	if !ok {
		h.dropIP(DropMalformed, 0, pkt)
		return
	}
	k := tcpKey{local: netip.AddrPortFrom(ip.dst, s.dport), remote: netip.AddrPortFrom(ip.src, s.sport)}
	if c := h.tcpConns[k]; c != nil {
		// A new SYN for a 4-tuple in TIME_WAIT, above what the old
		// connection received, reopens it (RFC 9293 §3.10.7.4 note, Linux
		// tcp_timewait_state_process → TCP_TW_SYN).
		if c.state == TCPTimeWait && s.flags&(tcpSYN|tcpACK|tcpRST) == tcpSYN && seqGT(s.seq, c.rcvNxt) {
			c.finish(nil)
		} else {
			c.input(&s)
			return
		}
	}
	if l := h.tcpListenerFor(ip.dst, s.dport); l != nil {
		l.input(k, &s)
		return
	}
	h.dropIP(DropNoSocket, 0, pkt)
	h.sendReset(k, &s)
}

// sendReset answers a segment that belongs to no connection (RFC 9293
// §3.10.7.1): never a RST for a RST; if it had an ACK, <SEQ=SEG.ACK><RST>;
// otherwise <SEQ=0><ACK=SEG.SEQ+SEG.LEN><RST,ACK>.
func (h *Host) sendReset(k tcpKey, s *tcpSeg) {
	if s.flags&tcpRST != 0 {
		return
	}
	seg := make([]byte, tcpHdrLen)
	put16(seg[0:], k.local.Port())
	put16(seg[2:], k.remote.Port())
	if s.flags&tcpACK != 0 {
		put32(seg[4:], s.ack)
		seg[13] = tcpRST
	} else {
		put32(seg[8:], s.seq+s.segLen())
		seg[13] = tcpRST | tcpACK
	}
	seg[12] = byte(tcpHdrLen/4) << 4
	src, dst := k.local.Addr(), k.remote.Addr()
	put16(seg[16:], l4Checksum(src, dst, protoTCP, seg))
	_ = h.sendIP(src, dst, protoTCP, seg, dst.Is4())
}

// input of a segment on a listener: a SYN opens a connection.
func (l *TCPListener) input(k tcpKey, s *tcpSeg) {
	h := l.h
	switch {
	case s.flags&tcpRST != 0:
		return
	case s.flags&tcpACK != 0:
		h.sendReset(k, s)
		return
	case s.flags&tcpSYN == 0:
		return
	}
	c := h.newTCPConn(k, l.handler)
	c.listener = l
	c.state = TCPSynReceived
	c.irs, c.rcvNxt = s.seq, s.seq+1
	c.peerMSS = int(s.mss)
	c.sndWnd = uint32(s.wnd)
	c.sndNxt = c.iss + 1
	l.conns = append(l.conns, c)
	c.sendSeg(c.iss, tcpSYN|tcpACK, nil)
	c.armRTX()
}

// acceptable is the RFC 9293 §3.10.7.4 segment acceptability test for a
// window of tcpWindow.
func (c *TCPConn) acceptable(s *tcpSeg) bool {
	n := s.segLen()
	if n == 0 {
		return seqLEQ(c.rcvNxt, s.seq) && seqLT(s.seq, c.rcvNxt+tcpWindow)
	}
	last := s.seq + n - 1
	return (seqLEQ(c.rcvNxt, s.seq) && seqLT(s.seq, c.rcvNxt+tcpWindow)) ||
		(seqLEQ(c.rcvNxt, last) && seqLT(last, c.rcvNxt+tcpWindow))
}

// input processes a segment for an existing connection (RFC 9293
// §3.10.7.3 and §3.10.7.4, simplified as the package doc says).
func (c *TCPConn) input(s *tcpSeg) {
	if c.state == TCPSynSent {
		c.inputSynSent(s)
		return
	}
	// A retransmitted SYN while we wait for the handshake's ACK: our
	// SYN-ACK was lost; send it again.
	if c.state == TCPSynReceived && s.flags&tcpSYN != 0 && s.flags&tcpACK == 0 && s.seq == c.irs {
		c.retransmitHead()
		return
	}
	if !c.acceptable(s) {
		if s.flags&tcpRST == 0 {
			c.sendSeg(c.sndNxt, tcpACK, nil)
		}
		if c.state == TCPTimeWait && s.flags&tcpFIN != 0 {
			c.enterTimeWait() // a retransmitted FIN restarts 2MSL
		}
		return
	}
	if s.flags&tcpRST != 0 {
		if s.seq == c.rcvNxt {
			c.reset = true
			err := ErrConnReset
			if c.state == TCPSynReceived {
				err = ErrConnRefused
			}
			c.finish(err)
			return
		}
		c.sendSeg(c.sndNxt, tcpACK, nil) // RFC 5961 §3.2 challenge ACK
		return
	}
	if s.flags&tcpSYN != 0 {
		c.sendSeg(c.sndNxt, tcpACK, nil) // RFC 5961 §4.2 challenge ACK
		return
	}
	if s.flags&tcpACK == 0 {
		return
	}
	events := make([]TCPEvent, 0, 3)
	if c.state == TCPSynReceived {
		if !seqLT(c.sndUna, s.ack) || !seqLEQ(s.ack, c.sndNxt) {
			c.h.sendReset(c.key, s)
			return
		}
		c.sndUna = c.iss + 1
		c.synAcked = true
		c.state = TCPEstablished
		if c.closeReq {
			c.state = TCPFinWait1
		}
		c.retries, c.rto = 0, tcpRTO
		c.h.n.stopTimer(c.rtx)
		events = append(events, TCPEventEstablished)
	}
	if seqGT(s.ack, c.sndNxt) {
		c.sendSeg(c.sndNxt, tcpACK, nil) // acks something not yet sent
		return
	}
	if seqGT(s.ack, c.sndUna) {
		c.ackAdvance(s.ack)
	}
	c.sndWnd = uint32(s.wnd)
	if c.finAcked {
		switch c.state {
		case TCPFinWait1:
			c.state = TCPFinWait2
		case TCPClosing:
			c.enterTimeWait()
		case TCPLastAck:
			c.fire(events)
			c.finish(nil)
			return
		}
	}
	// Data and FIN.
	if n := s.segLen(); n > 0 {
		c.ackPending = true
		if seqGT(s.seq, c.rcvNxt) {
			// Out of order: not queued; the duplicate ACK asks again.
			c.fire(events)
			c.flushAck()
			return
		}
		skip := c.rcvNxt - s.seq
		data := s.data
		if int(skip) < len(data) {
			data = data[skip:]
		} else {
			data = nil
		}
		if len(data) > 0 && !c.peerFin {
			c.newFrom = len(c.recv)
			c.recv = append(c.recv, data...)
			c.rcvNxt += uint32(len(data))
			events = append(events, TCPEventData)
		}
		if s.flags&tcpFIN != 0 && !c.peerFin && s.seq+uint32(len(s.data)) == c.rcvNxt {
			c.rcvNxt++
			c.peerFin = true
			events = append(events, TCPEventPeerClosed)
			switch c.state {
			case TCPEstablished:
				c.state = TCPCloseWait
			case TCPFinWait1:
				if c.finAcked {
					c.enterTimeWait()
				} else {
					c.state = TCPClosing
				}
			case TCPFinWait2:
				c.enterTimeWait()
			}
		}
	}
	c.fire(events)
	if c.state == TCPClosed {
		return
	}
	c.output()
	c.flushAck()
}

// fire delivers events to the handler in order, stopping if it closed the
// connection.
func (c *TCPConn) fire(events []TCPEvent) {
	for _, ev := range events {
		if c.state == TCPClosed {
			return
		}
		c.event(ev)
	}
}

// flushAck sends a pure ACK if input asked for one and nothing sent since
// carried it.
func (c *TCPConn) flushAck() {
	if c.ackPending && c.state != TCPClosed {
		c.sendSeg(c.sndNxt, tcpACK, nil)
	}
}

// inputSynSent is RFC 9293 §3.10.7.3.
func (c *TCPConn) inputSynSent(s *tcpSeg) {
	ackOK := false
	if s.flags&tcpACK != 0 {
		if s.ack != c.iss+1 {
			if s.flags&tcpRST == 0 {
				c.h.sendReset(c.key, s)
			}
			return
		}
		ackOK = true
	}
	if s.flags&tcpRST != 0 {
		if ackOK {
			c.reset = true
			c.finish(ErrConnRefused)
		}
		return
	}
	if s.flags&tcpSYN == 0 || !ackOK {
		return // simultaneous open is not supported
	}
	c.irs, c.rcvNxt = s.seq, s.seq+1
	c.peerMSS = int(s.mss)
	c.sndWnd = uint32(s.wnd)
	c.sndUna = s.ack
	c.synAcked = true
	c.state = TCPEstablished
	c.retries, c.rto = 0, tcpRTO
	c.h.n.stopTimer(c.rtx)
	c.ackPending = true
	c.event(TCPEventEstablished)
	if c.state == TCPClosed {
		return
	}
	c.output()
	c.flushAck()
}

// ackAdvance takes a new cumulative ACK.
func (c *TCPConn) ackAdvance(ack uint32) {
	acked := ack - c.sndUna
	if n := uint32(len(c.sendBuf)); acked > n {
		c.finAcked = true
		acked = n
	}
	c.sendBuf = c.sendBuf[acked:]
	c.sndUna = ack
	c.retries = 0
	c.rto = tcpRTO
	if c.sndUna == c.sndNxt {
		c.h.n.stopTimer(c.rtx)
		c.recovering = false
		return
	}
	if c.recovering {
		if seqLT(ack, c.recover) {
			c.retransmitHead() // partial ACK: the next segment was lost too
		} else {
			c.recovering = false
		}
	}
	c.armRTX()
}

// icmpError is an ICMP error about one of the connection's segments, seq
// being the sequence number it carried (Linux tcp_v4_err).
func (c *TCPConn) icmpError(e ICMPError, seq uint32) {
	c.icmpErrs = append(c.icmpErrs, e)
	// Ignore errors about segments outside what is in flight (RFC 5927
	// §4.1), as Linux does (it checks snd_una <= seq < snd_nxt).
	if c.state != TCPSynSent && !(seqLEQ(c.sndUna, seq) && seqLT(seq, c.sndNxt)) {
		return
	}
	switch {
	case e.IsFragNeeded():
		// The host already lowered the path MTU; if that is news to
		// the connection, resend what is in flight in segments that
		// fit (tcp_v4_mtu_reduced: only when the MTU went below
		// icsk_pmtu_cookie, so a burst of errors resends once).
		mtu := c.h.PathMTU(c.key.remote.Addr())
		if mtu >= c.pmtu {
			return
		}
		c.pmtu = mtu
		if c.synAcked && c.sndUna != c.sndNxt {
			c.recovering, c.recover = true, c.sndNxt
			c.retransmitHead()
			c.armRTX()
		}
	case e.IsUnreachable():
		// A hard error aborts a connect; on a connected socket it is
		// only a soft error (sk_err_soft).
		if c.state == TCPSynSent {
			c.finish(&e)
		}
	}
}
