package proto

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers"), the values
// of the proto arguments in this package. IP (0) is what the kernel stores as
// the protocol of fwmark persistence templates (IPPROTO_IP).
const (
	IP   = 0
	TCP  = 6
	UDP  = 17
	SCTP = 132
)

// State is a connection's protocol state (kernel cp->state). Its meaning
// depends on the protocol: the TCP*, SCTP* and UDPNormal constants are the
// kernel's numbering, which is also what the sync protocol carries. A
// persistence template uses TemplateNone / TemplateAssured instead.
//
// The paths through the TCP machine that matter most (INPUT = client to
// director, OUTPUT = real server reply seen by the director, only for NAT;
// DR/TUN connections use the INPUT_ONLY table until a reply is seen):
//
//	NAT:  NONE --in SYN--> SYN_RECV --out SYN/ACK--> SYN_RECV --in ACK--> ESTABLISHED
//	      ESTABLISHED --in FIN--> CLOSE_WAIT --out FIN--> TIME_WAIT   (client closes first)
//	      ESTABLISHED --out FIN--> FIN_WAIT --in FIN--> TIME_WAIT     (server closes first)
//	      ESTABLISHED --RST either way--> CLOSE
//	DR:   NONE --in SYN--> SYN_RECV --in ACK--> ESTABLISHED --in FIN--> FIN_WAIT
//
// Active states (counted in ActiveConn): TCP ESTABLISHED, SYN_SENT, SYN_RECV,
// SYNACK; SCTP ESTABLISHED. Everything else, and every UDP connection, is
// inactive (InActConn).
type State uint8

// TCP states, kernel numbering (IP_VS_TCP_S_*).
const (
	TCPNone State = iota
	TCPEstablished
	TCPSynSent
	TCPSynRecv
	TCPFinWait
	TCPTimeWait
	TCPClose
	TCPCloseWait
	TCPLastAck
	TCPListen
	TCPSynAck

	numTCPStates = iota // IP_VS_TCP_S_LAST
)

// SCTP states, kernel numbering (IP_VS_SCTP_S_*). The states are as seen
// from the real server; INIT1 and REJECTED exist only to give dropped or
// rejected INITs a short timeout.
const (
	SCTPNone State = iota
	SCTPInit1
	SCTPInit
	SCTPCookieSent
	SCTPCookieReplied
	SCTPCookieWait
	SCTPCookie
	SCTPCookieEchoed
	SCTPEstablished
	SCTPShutdownSent
	SCTPShutdownReceived
	SCTPShutdownAckSent
	SCTPRejected
	SCTPClosed

	numSCTPStates = iota // IP_VS_SCTP_S_LAST
)

// UDPNormal is the only UDP state (IP_VS_UDP_S_NORMAL), printed "UDP".
const UDPNormal State = 0

// Persistence template states (IP_VS_CTPL_S_*). A template becomes ASSURED
// when one of its connections reaches ESTABLISHED (TCP, SCTP) or a UDP reply
// is seen.
const (
	TemplateNone    State = 0
	TemplateAssured State = 1

	numTemplateStates = 2 // IP_VS_CTPL_S_LAST
)

// Names exactly as the kernel prints them in /proc/net/ip_vs_conn, which is
// what `ipvsadm -L -c` shows.
var (
	tcpNames = [numTCPStates]string{
		"NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT",
		"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK",
	}
	sctpNames = [numSCTPStates]string{
		"NONE", "INIT1", "INIT", "C-SENT", "C-REPLIED", "C-WAIT", "COOKIE",
		"C-ECHOED", "ESTABLISHED", "S-SENT", "S-RECEIVED", "S-ACK-SENT",
		"REJECTED", "CLOSED",
	}
	templateNames = [numTemplateStates]string{"NONE", "ASSURED"}
)

// errName is what the kernel prints for a state number outside the
// protocol's table or a protocol without a state machine (AH, ESP, unknown).
const errName = "ERR!"

// StateName returns the state as `ipvsadm -L -c` prints it
// (ip_vs_state_name): for a template "NONE" or "ASSURED" whatever the
// protocol; for TCP and SCTP the table names ("SYN_RECV", "C-SENT", ...);
// "UDP" for UDP; "NONE" for protocol 0; "ERR!" for anything out of range.
func StateName(proto uint8, s State, template bool) string {
	if template {
		if int(s) < len(templateNames) {
			return templateNames[s]
		}
		return errName
	}
	switch proto {
	case TCP:
		if int(s) < len(tcpNames) {
			return tcpNames[s]
		}
	case UDP:
		if s == UDPNormal {
			return "UDP"
		}
	case SCTP:
		if int(s) < len(sctpNames) {
			return sctpNames[s]
		}
	case IP:
		// No protocol handler for IPPROTO_IP: the kernel prints NONE.
		return "NONE"
	}
	return errName
}

// ValidState reports whether s is a state of proto (or of a template), the
// check a connection-sync backup makes before accepting a synced connection
// (ip_vs_proc_conn: state < pp->num_states, or < IP_VS_CTPL_S_LAST for
// templates). Only TCP, UDP and SCTP have connections.
func ValidState(proto uint8, s State, template bool) bool {
	if template {
		return s < numTemplateStates
	}
	switch proto {
	case TCP:
		return s < numTCPStates
	case UDP:
		return s == UDPNormal
	case SCTP:
		return s < numSCTPStates
	}
	return false
}

// IsActive reports whether a connection of proto in state s counts as an
// active connection of its real server (tcp_state_active; for SCTP only
// ESTABLISHED; UDP connections are never active).
func IsActive(proto uint8, s State) bool {
	switch proto {
	case TCP:
		return s < numTCPStates && tcpActive>>s&1 != 0
	case SCTP:
		return s == SCTPEstablished
	}
	return false
}

// tcpActive has bit s set for the active TCP states (tcp_state_active_table).
const tcpActive = 1<<TCPEstablished | 1<<TCPSynSent | 1<<TCPSynRecv | 1<<TCPSynAck

// Dir is the direction of a packet relative to its connection, the index of
// the transition table (IP_VS_DIR_*).
type Dir uint8

const (
	// Input is a packet from the client, seen in the input hook.
	Input Dir = iota
	// Output is a reply from the real server seen by the director: NAT, or
	// DR/TUN whose replies happen to be routed through the director.
	Output
	// InputOnly is a client packet of a connection whose replies the
	// director does not see (NOOUTPUT: the destination is not NAT). It is
	// never a hook direction; Resolve derives it.
	InputOnly

	numDirs = iota
)

// String returns the kernel's name of the direction.
func (d Dir) String() string {
	switch d {
	case Input:
		return "INPUT"
	case Output:
		return "OUTPUT"
	case InputOnly:
		return "INPUT_ONLY"
	}
	return "DIR?"
}

// Resolve maps the hook direction of a TCP or SCTP packet and the
// connection's NOOUTPUT flag to the table direction, as set_tcp_state and
// set_sctp_state do: with NOOUTPUT set, an input packet uses the INPUT_ONLY
// table, and the first output packet clears NOOUTPUT (clear is true) and
// uses the OUTPUT table, so from then on the connection is treated as NAT.
// UDP does not do this (Step takes care of it).
func (d Dir) Resolve(noOutput bool) (table Dir, clear bool) {
	if !noOutput {
		return d, false
	}
	if d == Output {
		return Output, true
	}
	return InputOnly, false
}

// clampDir maps an out-of-range direction to InputOnly, the table that
// assumes the least about what the director sees. Only a programming error
// produces such a value; the fuzz test holds us to never panicking on it.
func clampDir(d Dir) Dir {
	if d >= numDirs {
		return InputOnly
	}
	return d
}
