package proto

// TCP header flag bits as they sit in byte 13 of the TCP header (RFC 9293
// §3.1). Only these four drive the state machine.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagACK = 0x10
)

// TCP events, the row index within one direction of the table
// (tcp_state_idx). tcpEvNone is "none of RST, SYN, FIN, ACK".
const (
	tcpEvSYN = iota
	tcpEvFIN
	tcpEvACK
	tcpEvRST
	numTCPEvents

	tcpEvNone = numTCPEvents
)

// tcpEvent derives the event from the TCP flags with the kernel's priority
// RST > SYN > FIN > ACK (tcp_state_idx).
func tcpEvent(flags uint8) int {
	switch {
	case flags&FlagRST != 0:
		return tcpEvRST
	case flags&FlagSYN != 0:
		return tcpEvSYN
	case flags&FlagFIN != 0:
		return tcpEvFIN
	case flags&FlagACK != 0:
		return tcpEvACK
	}
	return tcpEvNone
}

// tcpTable is one TCP transition table: [direction][event][current state].
type tcpTable [numDirs][numTCPEvents][numTCPStates]State

// Short names so the tables below read like the kernel's.
const (
	sNO = TCPNone
	sES = TCPEstablished
	sSS = TCPSynSent
	sSR = TCPSynRecv
	sFW = TCPFinWait
	sTW = TCPTimeWait
	sCL = TCPClose
	sCW = TCPCloseWait
	sLA = TCPLastAck
	sLI = TCPListen
	sSA = TCPSynAck
)

// tcpStates is the normal table (kernel tcp_states).
var tcpStates = tcpTable{
	Input: {
		//           sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA
		tcpEvSYN: {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		tcpEvFIN: {sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW},
		tcpEvACK: {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		tcpEvRST: {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR},
	},
	Output: {
		//           sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA
		tcpEvSYN: {sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR},
		tcpEvFIN: {sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW},
		tcpEvACK: {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES},
		tcpEvRST: {sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL},
	},
	InputOnly: {
		//           sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA
		tcpEvSYN: {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		tcpEvFIN: {sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW},
		tcpEvACK: {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		tcpEvRST: {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
	},
}

// tcpStatesDOS is the secure_tcp table (kernel tcp_states_dos): a SYN seen
// only in input leads to SYNACK instead of SYN_RECV, and a connection is
// only believed ESTABLISHED once the real server has answered.
var tcpStatesDOS = tcpTable{
	Input: {
		//           sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA
		tcpEvSYN: {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSA},
		tcpEvFIN: {sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sSA},
		tcpEvACK: {sES, sES, sSS, sSR, sFW, sTW, sCL, sCW, sCL, sLI, sSA},
		tcpEvRST: {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
	},
	Output: {
		//           sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA
		tcpEvSYN: {sSS, sES, sSS, sSA, sSS, sSS, sSS, sSS, sSS, sLI, sSA},
		tcpEvFIN: {sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW},
		tcpEvACK: {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES},
		tcpEvRST: {sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL},
	},
	InputOnly: {
		//           sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA
		tcpEvSYN: {sSA, sES, sES, sSR, sSA, sSA, sSA, sSA, sSA, sSA, sSA},
		tcpEvFIN: {sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW},
		tcpEvACK: {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		tcpEvRST: {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
	},
}

// TCPTransition returns the state after a segment with the given flags
// (header byte 13) in table direction dir (already resolved, see
// Dir.Resolve), using the secure_tcp table when secure is set. A segment
// with none of RST, SYN, FIN, ACK moves the connection to CLOSE, as the
// kernel does. An out-of-range cur (never produced by this package) is
// treated the same way and gives CLOSE.
func TCPTransition(cur State, dir Dir, tcpFlags uint8, secure bool) State {
	ev := tcpEvent(tcpFlags)
	if ev == tcpEvNone || cur >= numTCPStates {
		return TCPClose
	}
	t := &tcpStates
	if secure {
		t = &tcpStatesDOS
	}
	return t[clampDir(dir)][ev][cur]
}
