package proto

import "time"

// Flip says how a transition changes the real server's connection counts
// (the kernel's INACTIVE flag handling in set_tcp_state / set_sctp_state).
type Flip int8

const (
	// NoFlip: the connection stays active or stays inactive.
	NoFlip Flip = 0
	// ToActive: one connection moves from InActConn to ActiveConn.
	ToActive Flip = 1
	// ToInactive: one connection moves from ActiveConn to InActConn.
	ToInactive Flip = -1
)

// Transition is what one packet does to a connection.
type Transition struct {
	// State is the new state.
	State State
	// Dir is the table direction used (INPUT_ONLY for a NOOUTPUT
	// connection's client packets); for UDP it is the hook direction.
	Dir Dir
	// Timeout is the new timeout: the kernel re-arms the connection timer
	// with the new state's timeout after every packet, even when the state
	// does not change.
	Timeout time.Duration
	// Flip is the change of the connection's active/inactive accounting.
	Flip Flip
	// ClearNoOutput is set when this was the first reply seen on a
	// NOOUTPUT (DR/TUN) TCP or SCTP connection: the caller clears the flag,
	// and later client packets use the INPUT table, as for NAT.
	ClearNoOutput bool
	// Assure is set when the controlling persistence template, if any,
	// becomes ASSURED: on entering ESTABLISHED (TCP, SCTP) and on every UDP
	// reply (ip_vs_control_assure_ct).
	Assure bool
}

// Step runs one packet of a proto connection in state cur through the state
// machine, the way ip_vs_set_state does after each packet. hook is the hook
// direction (Input or Output; InputOnly is accepted as already resolved),
// noOutput is the connection's NOOUTPUT flag (set for non-NAT destinations
// until a reply is seen). info is the TCP flags byte (header byte 13) for
// TCP, the first chunk type for SCTP with an ABORT bundled after a first
// COOKIE ECHO/ACK already substituted (see SCTPEffectiveChunk), and ignored
// for UDP. secure selects the secure_tcp table (TCP only).
//
// The accounting flip is derived from the states (active before vs after),
// which equals the kernel's use of the INACTIVE flag as long as the flag was
// set from the state, as it always is for connections created here (new
// connections start inactive in state 0, which is inactive for every
// protocol). A synced connection whose master's INACTIVE bit disagrees
// with its state is the one case where they could differ; the sync code
// should set the bit from IsActive. For a protocol without a state machine
// Step returns cur unchanged with timeout 0.
//
// A packet too short to hold the TCP header or a first SCTP chunk header
// never reaches the kernel's state machine: the connection keeps its state
// and timeout, and the caller does not call Step.
func (t *Timeouts) Step(proto uint8, cur State, hook Dir, noOutput bool, info uint8, secure bool) Transition {
	// Locals assembled into one composite literal at the end: filling a
	// Transition field by field measured 35 ns/op against 25 for this in
	// BenchmarkStep (2026-11-22, 2 GHz Xeon), likely narrow stores read
	// back as wide words.
	dir := clampDir(hook)
	var (
		next    State
		timeout time.Duration
		fl      Flip
		clear   bool
		assure  bool
	)
	switch proto {
	case TCP:
		dir, clear = dir.Resolve(noOutput)
		next = TCPTransition(cur, dir, info, secure)
		timeout = t.tcp[next] // TCPTransition gives valid states only
		if next != cur {
			fl = flip(IsActive(TCP, cur), IsActive(TCP, next))
			assure = next == TCPEstablished
		}
	case SCTP:
		dir, clear = dir.Resolve(noOutput)
		next = SCTPTransition(cur, dir, info, false)
		timeout = t.sctp[next] // SCTPTransition gives valid states only
		if next != cur {
			fl = flip(cur == SCTPEstablished, next == SCTPEstablished)
			assure = next == SCTPEstablished
		}
	case UDP:
		// udp_state_transition: no state, no NOOUTPUT handling; a reply
		// assures the template.
		next, timeout, assure = UDPNormal, t.udp, dir == Output
	default:
		next = cur
	}
	return Transition{State: next, Dir: dir, Timeout: timeout, Flip: fl, ClearNoOutput: clear, Assure: assure}
}

// flip turns "active before" and "active after" into the accounting change.
func flip(was, is bool) Flip {
	switch {
	case is && !was:
		return ToActive
	case was && !is:
		return ToInactive
	}
	return NoFlip
}

// SCTPEffectiveChunk folds the bundled-ABORT rule into the chunk type, giving
// the info value Step takes for SCTP: ChunkAbort for a COOKIE ECHO or COOKIE
// ACK followed by an ABORT, the chunk type otherwise.
func SCTPEffectiveChunk(chunkType uint8, abortBundled bool) uint8 {
	if sctpEvent(chunkType, abortBundled) == sctpEvAbort {
		return ChunkAbort
	}
	return chunkType
}
