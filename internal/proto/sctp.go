package proto

// SCTP chunk types (RFC 9260 §3.2) that the state machine distinguishes.
// Every other type, including ones defined after RFC 2960 (I-DATA,
// FORWARD-TSN, AUTH, ...), counts as DATA.
const (
	ChunkData             = 0
	ChunkInit             = 1
	ChunkInitAck          = 2
	ChunkSACK             = 3
	ChunkHeartbeat        = 4
	ChunkHeartbeatAck     = 5
	ChunkAbort            = 6
	ChunkShutdown         = 7
	ChunkShutdownAck      = 8
	ChunkError            = 9
	ChunkCookieEcho       = 10
	ChunkCookieAck        = 11
	ChunkECNE             = 12
	ChunkCWR              = 13
	ChunkShutdownComplete = 14
)

// SCTP events, the row index within one direction of the table
// (enum ipvs_sctp_event_t).
const (
	sctpEvData = iota // DATA, SACK, HEARTBEAT(-ACK), ECNE, CWR, unknown
	sctpEvInit
	sctpEvInitAck
	sctpEvCookieEcho
	sctpEvCookieAck
	sctpEvShutdown
	sctpEvShutdownAck
	sctpEvShutdownComplete
	sctpEvError
	sctpEvAbort
	numSCTPEvents
)

// sctpEvents maps chunk types 0..14 to events (kernel sctp_events); types
// beyond the array are DATA.
var sctpEvents = [...]uint8{
	ChunkData:             sctpEvData,
	ChunkInit:             sctpEvInit,
	ChunkInitAck:          sctpEvInitAck,
	ChunkSACK:             sctpEvData,
	ChunkHeartbeat:        sctpEvData,
	ChunkHeartbeatAck:     sctpEvData,
	ChunkAbort:            sctpEvAbort,
	ChunkShutdown:         sctpEvShutdown,
	ChunkShutdownAck:      sctpEvShutdownAck,
	ChunkError:            sctpEvError,
	ChunkCookieEcho:       sctpEvCookieEcho,
	ChunkCookieAck:        sctpEvCookieAck,
	ChunkECNE:             sctpEvData,
	ChunkCWR:              sctpEvData,
	ChunkShutdownComplete: sctpEvShutdownComplete,
}

// sctpEvent derives the event of a packet from its first chunk type, with
// the kernel's one look-ahead: a COOKIE ECHO or COOKIE ACK followed by an
// ABORT counts as ABORT (RFC 9260 §3.3.7 lets control chunks be bundled
// before an ABORT).
func sctpEvent(chunkType uint8, abortBundled bool) int {
	if abortBundled && (chunkType == ChunkCookieEcho || chunkType == ChunkCookieAck) {
		return sctpEvAbort
	}
	if int(chunkType) < len(sctpEvents) {
		return int(sctpEvents[chunkType])
	}
	return sctpEvData
}

// Short names so the table below reads like the kernel's.
const (
	xNO = SCTPNone
	xI1 = SCTPInit1
	xIN = SCTPInit
	xCS = SCTPCookieSent
	xCR = SCTPCookieReplied
	xCW = SCTPCookieWait
	xCO = SCTPCookie
	xCE = SCTPCookieEchoed
	xES = SCTPEstablished
	xSS = SCTPShutdownSent
	xSR = SCTPShutdownReceived
	xSA = SCTPShutdownAckSent
	xRJ = SCTPRejected
	xCL = SCTPClosed
)

// sctpStates is the SCTP transition table (kernel sctp_states):
// [direction][event][current state].
var sctpStates = [numDirs][numSCTPEvents][numSCTPStates]State{
	Input: {
		//                     xNO  xI1  xIN  xCS  xCR  xCW  xCO  xCE  xES  xSS  xSR  xSA  xRJ  xCL
		sctpEvData:             {xES, xI1, xIN, xCS, xCR, xCW, xCO, xCE, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvInit:             {xI1, xIN, xIN, xCS, xCR, xCW, xCO, xCE, xES, xSS, xSR, xSA, xIN, xIN},
		sctpEvInitAck:          {xCW, xCW, xCW, xCS, xCR, xCO, xCO, xCE, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvCookieEcho:       {xCR, xIN, xIN, xCR, xCR, xCW, xCO, xCE, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvCookieAck:        {xES, xI1, xIN, xCS, xCR, xCW, xCO, xES, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvShutdown:         {xSR, xI1, xIN, xCS, xCR, xCW, xCO, xCE, xSR, xSS, xSR, xSA, xRJ, xCL},
		sctpEvShutdownAck:      {xCL, xIN, xIN, xCS, xCR, xCW, xCO, xCE, xES, xCL, xSR, xCL, xRJ, xCL},
		sctpEvShutdownComplete: {xCL, xCL, xCL, xCS, xCR, xCW, xCO, xCE, xES, xSS, xSR, xCL, xRJ, xCL},
		sctpEvError:            {xCL, xI1, xIN, xCS, xCR, xCW, xCO, xCL, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvAbort:            {xCL, xCL, xCL, xCL, xCL, xRJ, xCL, xCL, xCL, xCL, xCL, xCL, xCL, xCL},
	},
	Output: {
		//                     xNO  xI1  xIN  xCS  xCR  xCW  xCO  xCE  xES  xSS  xSR  xSA  xRJ  xCL
		sctpEvData:             {xES, xI1, xIN, xCS, xCR, xCW, xCO, xCE, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvInit:             {xCW, xCW, xCW, xCW, xCW, xCW, xCW, xCW, xES, xCW, xCW, xCW, xCW, xCW},
		sctpEvInitAck:          {xCS, xCS, xCS, xCS, xCR, xCW, xCO, xCE, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvCookieEcho:       {xCE, xCE, xCE, xCE, xCE, xCE, xCE, xCE, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvCookieAck:        {xES, xES, xES, xES, xES, xES, xES, xES, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvShutdown:         {xSS, xSS, xSS, xSS, xSS, xSS, xSS, xSS, xSS, xSS, xSR, xSA, xRJ, xCL},
		sctpEvShutdownAck:      {xSA, xSA, xSA, xSA, xSA, xCW, xCO, xCE, xES, xSA, xSA, xSA, xRJ, xCL},
		sctpEvShutdownComplete: {xCL, xI1, xIN, xCS, xCR, xCW, xCO, xCE, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvError:            {xCL, xCL, xCL, xCL, xCL, xCW, xCO, xCE, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvAbort:            {xCL, xRJ, xCL, xCL, xCL, xCL, xCL, xCL, xCL, xCL, xCL, xCL, xCL, xCL},
	},
	InputOnly: {
		//                     xNO  xI1  xIN  xCS  xCR  xCW  xCO  xCE  xES  xSS  xSR  xSA  xRJ  xCL
		sctpEvData:             {xES, xI1, xIN, xCS, xCR, xES, xCO, xCE, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvInit:             {xI1, xIN, xIN, xIN, xIN, xIN, xCO, xCE, xES, xSS, xSR, xSA, xIN, xIN},
		sctpEvInitAck:          {xCE, xCE, xCE, xCE, xCE, xCE, xCO, xCE, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvCookieEcho:       {xES, xES, xES, xES, xES, xES, xCO, xCE, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvCookieAck:        {xES, xI1, xIN, xES, xES, xCW, xES, xES, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvShutdown:         {xSR, xI1, xIN, xCS, xCR, xCW, xCO, xCE, xSR, xSS, xSR, xSA, xRJ, xCL},
		sctpEvShutdownAck:      {xCL, xIN, xIN, xCS, xCR, xCW, xCO, xCE, xCL, xCL, xSR, xCL, xRJ, xCL},
		sctpEvShutdownComplete: {xCL, xCL, xCL, xCL, xCL, xCW, xCO, xCE, xES, xSS, xCL, xCL, xRJ, xCL},
		sctpEvError:            {xCL, xI1, xIN, xCS, xCR, xCW, xCO, xCE, xES, xSS, xSR, xSA, xRJ, xCL},
		sctpEvAbort:            {xCL, xCL, xCL, xCL, xCL, xRJ, xCL, xCL, xCL, xCL, xCL, xCL, xCL, xCL},
	},
}

// SCTPTransition returns the state after a packet whose first chunk has type
// chunkType, in table direction dir (already resolved, see Dir.Resolve).
// abortBundled says that an ABORT chunk directly follows a first COOKIE ECHO
// or COOKIE ACK chunk (SCTPFirstChunk finds both). An out-of-range cur
// (never produced by this package) gives CLOSED.
func SCTPTransition(cur State, dir Dir, chunkType uint8, abortBundled bool) State {
	if cur >= numSCTPStates {
		return SCTPClosed
	}
	return sctpStates[clampDir(dir)][sctpEvent(chunkType, abortBundled)][cur]
}

// sctpChunkHeaderLen is the size of a chunk header: type, flags, length
// (RFC 9260 §3.2).
const sctpChunkHeaderLen = 4

// SCTPFirstChunk reads what the state machine needs from the chunks of an
// SCTP packet (the bytes after the 12-byte common header): the type of the
// first chunk, and whether that chunk is a COOKIE ECHO or COOKIE ACK
// directly followed by an ABORT (set_sctp_state's bundled-ABORT rule: the
// next chunk starts at the first chunk's length rounded up to 4; a length
// below 4 disables the look-ahead). ok is false when there is no complete
// first chunk header; the kernel then leaves state and timer alone.
func SCTPFirstChunk(chunks []byte) (chunkType uint8, abortBundled, ok bool) {
	if len(chunks) < sctpChunkHeaderLen {
		return 0, false, false
	}
	chunkType = chunks[0]
	if chunkType != ChunkCookieEcho && chunkType != ChunkCookieAck {
		return chunkType, false, true
	}
	clen := int(chunks[2])<<8 | int(chunks[3])
	if clen < sctpChunkHeaderLen {
		return chunkType, false, true
	}
	next := (clen + 3) &^ 3 // ALIGN(clen, 4): chunks are padded to 4 bytes
	if len(chunks)-next >= sctpChunkHeaderLen && chunks[next] == ChunkAbort {
		return chunkType, true, true
	}
	return chunkType, false, true
}
