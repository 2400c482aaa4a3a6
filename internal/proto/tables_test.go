package proto

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Abbreviations used by the reference's tables, in kernel state order.
var (
	specTCPAbbrev  = strings.Fields("NO ES SS SR FW TW CL CW LA LI SA")
	specSCTPAbbrev = strings.Fields("NO I1 IN CS CR CW CO CE ES SS SR SA RJ CL")
)

func abbrevIndex(t *testing.T, abbrev []string, s string) State {
	t.Helper()
	for i, a := range abbrev {
		if a == s {
			return State(i)
		}
	}
	t.Fatalf("unknown state abbreviation %q", s)
	return 0
}

// specTCPCell is one cell of a parsed reference TCP table.
type specTCPCell struct {
	dir   Dir
	flags uint8 // the one flag that produces the row's event
	row   string
	cur   State
	want  State
}

// parseSpecTCP parses a markdown table of the reference: rows
// "| IN syn | SR | ES | ... |", columns in the header's state order.
func parseSpecTCP(t *testing.T, table string) []specTCPCell {
	t.Helper()
	dirs := map[string]Dir{"IN": Input, "OUT": Output, "INONLY": InputOnly}
	events := map[string]uint8{"syn": FlagSYN, "fin": FlagFIN, "ack": FlagACK, "rst": FlagRST}
	var cols []State
	var cells []specTCPCell
	rows := 0
	for _, line := range strings.Split(table, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "|---") {
			continue
		}
		f := strings.Split(strings.Trim(line, "|"), "|")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		if f[0] == "dir/ev" {
			for _, c := range f[1:] {
				cols = append(cols, abbrevIndex(t, specTCPAbbrev, c))
			}
			continue
		}
		de := strings.Fields(f[0])
		dir, ok1 := dirs[de[0]]
		flags, ok2 := events[de[1]]
		if len(de) != 2 || !ok1 || !ok2 {
			t.Fatalf("bad row label %q", f[0])
		}
		if len(f)-1 != len(cols) || len(cols) != numTCPStates {
			t.Fatalf("row %q has %d cells, header %d, want %d", f[0], len(f)-1, len(cols), numTCPStates)
		}
		for i, c := range f[1:] {
			cells = append(cells, specTCPCell{dir, flags, f[0], cols[i], abbrevIndex(t, specTCPAbbrev, c)})
		}
		rows++
	}
	if rows != int(numDirs)*numTCPEvents {
		t.Fatalf("parsed %d rows, want %d", rows, int(numDirs)*numTCPEvents)
	}
	return cells
}

// oracleOverrides lists reference cells that the kernel 6.1 oracle
// (../shared/oracle/README.md "Kernel behaviour", scenarios d3/d4 and
// golden/a2-traffic-formats.out) contradicts; the oracle wins and the
// implementation follows it. Key: "table/row/state". As of 2026-11-22 the
// list is empty: every visible observation (NAT: SYN -> SYN_RECV, ACK ->
// ESTABLISHED, client FIN -> CLOSE_WAIT -> TIME_WAIT, server FIN ->
// FIN_WAIT, RST -> CLOSE; DR: client FIN -> FIN_WAIT, unseen server RST
// keeps ESTABLISHED, SYN answered by RST keeps SYN_RECV) agrees with the
// reference tables and with the kernel source; the transcripts in testdata/
// replay each observation.
var oracleOverrides = map[string]State{}

func TestTCPTablesMatchReference(t *testing.T) {
	for _, tc := range []struct {
		name   string
		table  string
		secure bool
	}{
		{"tcp_states", specTCPStates, false},
		{"tcp_states_dos", specTCPStatesDOS, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cells := parseSpecTCP(t, tc.table)
			for _, c := range cells {
				want := c.want
				key := fmt.Sprintf("%s/%s/%s", tc.name, c.row, specTCPAbbrev[c.cur])
				if o, ok := oracleOverrides[key]; ok {
					want = o
				}
				if got := TCPTransition(c.cur, c.dir, c.flags, tc.secure); got != want {
					t.Errorf("%s: %s in %s -> %s, want %s", tc.name, c.row,
						tcpNames[c.cur], tcpNames[got], tcpNames[want])
				}
			}
			if len(cells) != int(numDirs)*numTCPEvents*numTCPStates {
				t.Errorf("checked %d cells", len(cells))
			}
		})
	}
}

func TestSCTPTableMatchesReference(t *testing.T) {
	dirs := map[string]Dir{"INPUT": Input, "OUTPUT": Output, "INPUT-ONLY": InputOnly}
	// One chunk type per event row, and for "ab" also the bundled forms.
	type chunk struct {
		typ     uint8
		bundled bool
	}
	events := map[string][]chunk{
		"d":   {{ChunkData, false}, {ChunkSACK, false}, {ChunkHeartbeat, false}, {ChunkHeartbeatAck, false}, {ChunkECNE, false}, {ChunkCWR, false}, {15, false}, {0x40, false}, {255, false}, {ChunkData, true}},
		"i":   {{ChunkInit, false}, {ChunkInit, true}},
		"i_a": {{ChunkInitAck, false}, {ChunkInitAck, true}},
		"c_e": {{ChunkCookieEcho, false}},
		"c_a": {{ChunkCookieAck, false}},
		"s":   {{ChunkShutdown, false}, {ChunkShutdown, true}},
		"s_a": {{ChunkShutdownAck, false}},
		"s_c": {{ChunkShutdownComplete, false}},
		"err": {{ChunkError, false}},
		"ab":  {{ChunkAbort, false}, {ChunkCookieEcho, true}, {ChunkCookieAck, true}},
	}
	dir := Dir(255)
	rows, cells := 0, 0
	for _, line := range strings.Split(specSCTPStates, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if d, ok := dirs[f[0]]; ok && len(f) == 1 {
			dir = d
			continue
		}
		chunks, ok := events[f[0]]
		if !ok || dir == 255 || len(f)-1 != numSCTPStates {
			t.Fatalf("bad SCTP row %q", line)
		}
		rows++
		for i, c := range f[1:] {
			cur, want := State(i), abbrevIndex(t, specSCTPAbbrev, c)
			key := fmt.Sprintf("sctp_states/%s %s/%s", dir, f[0], specSCTPAbbrev[cur])
			if o, ok := oracleOverrides[key]; ok {
				want = o
			}
			for _, ch := range chunks {
				if got := SCTPTransition(cur, dir, ch.typ, ch.bundled); got != want {
					t.Errorf("%s %s (chunk %d bundled-abort %v) in %s -> %s, want %s",
						dir, f[0], ch.typ, ch.bundled, sctpNames[cur], sctpNames[got], sctpNames[want])
				}
			}
			cells++
		}
	}
	if rows != int(numDirs)*numSCTPEvents || cells != rows*numSCTPStates {
		t.Errorf("checked %d rows, %d cells", rows, cells)
	}
}

// TestTCPFlagPriority checks every flags byte against the rule "RST > SYN >
// FIN > ACK, none of these -> CLOSE", written here as a priority list.
func TestTCPFlagPriority(t *testing.T) {
	prio := []uint8{FlagRST, FlagSYN, FlagFIN, FlagACK}
	for f := 0; f < 256; f++ {
		flags := uint8(f)
		var single uint8
		for _, p := range prio {
			if flags&p != 0 {
				single = p
				break
			}
		}
		for _, secure := range []bool{false, true} {
			for dir := Input; dir < numDirs; dir++ {
				for cur := State(0); cur < numTCPStates; cur++ {
					want := TCPClose
					if single != 0 {
						want = TCPTransition(cur, dir, single, secure)
					}
					if got := TCPTransition(cur, dir, flags, secure); got != want {
						t.Fatalf("flags %#02x %s %s secure=%v: got %s want %s",
							flags, dir, tcpNames[cur], secure, tcpNames[got], tcpNames[want])
					}
				}
			}
		}
	}
}

// specTCPNames and specSCTPNames are the "Names printed" lists of the
// reference, in kernel order.
const (
	specTCPNames  = "NONE ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT TIME_WAIT CLOSE CLOSE_WAIT LAST_ACK LISTEN SYNACK"
	specSCTPNames = "NONE INIT1 INIT C-SENT C-REPLIED C-WAIT COOKIE C-ECHOED ESTABLISHED S-SENT S-RECEIVED S-ACK-SENT REJECTED CLOSED"
)

func TestStateName(t *testing.T) {
	for i, n := range strings.Fields(specTCPNames) {
		if got := StateName(TCP, State(i), false); got != n {
			t.Errorf("TCP state %d: %q, want %q", i, got, n)
		}
	}
	for i, n := range strings.Fields(specSCTPNames) {
		if got := StateName(SCTP, State(i), false); got != n {
			t.Errorf("SCTP state %d: %q, want %q", i, got, n)
		}
	}
	for _, tc := range []struct {
		proto    uint8
		s        State
		template bool
		want     string
	}{
		// Seen in golden/a2-traffic-formats.out (`ipvsadm -L -n -c`).
		{UDP, UDPNormal, false, "UDP"},
		{TCP, TemplateAssured, true, "ASSURED"},
		{UDP, TemplateAssured, true, "ASSURED"},
		// Kernel ip_vs_state_name.
		{TCP, TemplateNone, true, "NONE"},
		{IP, TemplateAssured, true, "ASSURED"},
		{IP, 0, false, "NONE"},
		{TCP, 2, true, "ERR!"},
		{TCP, numTCPStates, false, "ERR!"},
		{SCTP, numSCTPStates, false, "ERR!"},
		{UDP, 1, false, "ERR!"},
		{51, 0, false, "ERR!"}, // AH has no state names
		{1, 0, false, "ERR!"},
	} {
		if got := StateName(tc.proto, tc.s, tc.template); got != tc.want {
			t.Errorf("StateName(%d, %d, %v) = %q, want %q", tc.proto, tc.s, tc.template, got, tc.want)
		}
	}
}

func TestValidState(t *testing.T) {
	for _, tc := range []struct {
		proto    uint8
		template bool
		n        int
	}{
		{TCP, false, 11}, {SCTP, false, 14}, {UDP, false, 1},
		{TCP, true, 2}, {IP, true, 2}, {IP, false, 0}, {51, false, 0},
	} {
		for s := 0; s < 256; s++ {
			if got, want := ValidState(tc.proto, State(s), tc.template), s < tc.n; got != want {
				t.Errorf("ValidState(%d, %d, %v) = %v", tc.proto, s, tc.template, got)
			}
		}
	}
}

func TestIsActive(t *testing.T) {
	active := map[string]bool{"ESTABLISHED": true, "SYN_SENT": true, "SYN_RECV": true, "SYNACK": true}
	for s := State(0); s < 255; s++ {
		if got, want := IsActive(TCP, s), active[StateName(TCP, s, false)]; got != want {
			t.Errorf("IsActive(TCP, %d) = %v", s, got)
		}
		if got, want := IsActive(SCTP, s), s == SCTPEstablished; got != want {
			t.Errorf("IsActive(SCTP, %d) = %v", s, got)
		}
		if IsActive(UDP, s) || IsActive(IP, s) {
			t.Errorf("UDP/IP state %d active", s)
		}
	}
}

func TestDefaultTimeouts(t *testing.T) {
	tm := DefaultTimeouts()
	// Reference §3.4 "Default timeouts (s)".
	tcp := map[string]int{"NONE": 2, "ESTABLISHED": 900, "SYN_SENT": 120, "SYN_RECV": 60,
		"FIN_WAIT": 120, "TIME_WAIT": 120, "CLOSE": 10, "CLOSE_WAIT": 60, "LAST_ACK": 30,
		"LISTEN": 120, "SYNACK": 120}
	for s := State(0); s < numTCPStates; s++ {
		want := time.Duration(tcp[tcpNames[s]]) * time.Second
		if got := tm.For(TCP, s); got != want || want == 0 {
			t.Errorf("TCP %s: %v, want %v", tcpNames[s], got, want)
		}
	}
	// "NONE 2, INIT1 4, REJECTED 4, ESTABLISHED 900, all others 61".
	sctp := map[string]int{"NONE": 2, "INIT1": 4, "REJECTED": 4, "ESTABLISHED": 900}
	for s := State(0); s < numSCTPStates; s++ {
		want, ok := sctp[sctpNames[s]]
		if !ok {
			want = 61
		}
		if got := tm.For(SCTP, s); got != time.Duration(want)*time.Second {
			t.Errorf("SCTP %s: %v, want %ds", sctpNames[s], got, want)
		}
	}
	for s := State(0); s < 4; s++ {
		if got := tm.For(UDP, s); got != 300*time.Second {
			t.Errorf("UDP: %v", got)
		}
	}
	if got := tm.For(TCP, numTCPStates); got != 2*time.Second {
		t.Errorf("TCP LAST: %v", got)
	}
	if got := tm.For(SCTP, 200); got != 2*time.Second {
		t.Errorf("SCTP out of range: %v", got)
	}
	if got := tm.For(IP, 0); got != 0 {
		t.Errorf("IP: %v", got)
	}
	if tcp, fin, udp := tm.Get(); tcp != 900*time.Second || fin != 120*time.Second || udp != 300*time.Second {
		t.Errorf("Get() = %v %v %v, want 900s 120s 5m0s", tcp, fin, udp)
	}
}

func TestSetOnlyChangesThreeTimeouts(t *testing.T) {
	def := DefaultTimeouts()
	tm := DefaultTimeouts()
	if err := tm.Set(11*time.Second, 22*time.Second, 33*time.Second); err != nil {
		t.Fatal(err)
	}
	for s := State(0); s < numTCPStates; s++ {
		want := def.For(TCP, s)
		switch s {
		case TCPEstablished:
			want = 11 * time.Second
		case TCPFinWait:
			want = 22 * time.Second
		}
		if got := tm.For(TCP, s); got != want {
			t.Errorf("TCP %s: %v, want %v", tcpNames[s], got, want)
		}
	}
	for s := State(0); s < numSCTPStates; s++ {
		if got, want := tm.For(SCTP, s), def.For(SCTP, s); got != want {
			t.Errorf("SCTP %s: %v, want %v (SCTP ESTABLISHED is not --set's tcp)", sctpNames[s], got, want)
		}
	}
	if got := tm.For(UDP, 0); got != 33*time.Second {
		t.Errorf("UDP %v", got)
	}

	// Errors change nothing, even for the valid values of the same call.
	before := tm
	for _, bad := range [][3]time.Duration{
		{-time.Second, 0, 0}, {0, -time.Second, 0}, {0, 0, -time.Second},
		{MaxTimeout + time.Second, 0, 0}, {1, MaxTimeout + 1, 1}, {5, 5, MaxTimeout + time.Second},
	} {
		if err := tm.Set(bad[0], bad[1], bad[2]); err != ErrTimeoutRange {
			t.Errorf("Set(%v) = %v, want ErrTimeoutRange", bad, err)
		}
		if tm != before {
			t.Errorf("Set(%v) changed the table", bad)
		}
	}
	if err := tm.Set(MaxTimeout, MaxTimeout, MaxTimeout); err != nil {
		t.Errorf("Set(MaxTimeout...) = %v", err)
	}
}

func TestDirResolve(t *testing.T) {
	for _, tc := range []struct {
		hook      Dir
		noOutput  bool
		want      Dir
		wantClear bool
	}{
		{Input, false, Input, false},
		{Output, false, Output, false},
		{Input, true, InputOnly, false},
		{Output, true, Output, true},
		{InputOnly, true, InputOnly, false},
		{InputOnly, false, InputOnly, false},
	} {
		got, clear := tc.hook.Resolve(tc.noOutput)
		if got != tc.want || clear != tc.wantClear {
			t.Errorf("%s.Resolve(%v) = %s, %v; want %s, %v", tc.hook, tc.noOutput, got, clear, tc.want, tc.wantClear)
		}
	}
}

// TestStepMatchesKernelAccounting drives Step over every TCP and SCTP
// (state, direction, NOOUTPUT, event) and checks it against a direct model
// of set_tcp_state / set_sctp_state that tracks the INACTIVE flag as the
// kernel does (flip only when the state changes, decided by the flag).
func TestStepMatchesKernelAccounting(t *testing.T) {
	tm := DefaultTimeouts()
	tcpInfos := []uint8{0, FlagSYN, FlagFIN, FlagACK, FlagRST, FlagSYN | FlagACK, FlagFIN | FlagACK, FlagRST | FlagACK}
	sctpInfos := []uint8{ChunkData, ChunkInit, ChunkInitAck, ChunkCookieEcho, ChunkCookieAck,
		ChunkShutdown, ChunkShutdownAck, ChunkShutdownComplete, ChunkError, ChunkAbort, 99}
	for _, p := range []struct {
		proto uint8
		n     State
		infos []uint8
	}{{TCP, numTCPStates, tcpInfos}, {SCTP, numSCTPStates, sctpInfos}} {
		for cur := State(0); cur < p.n; cur++ {
			for _, hook := range []Dir{Input, Output} {
				for _, noOut := range []bool{false, true} {
					for _, info := range p.infos {
						for _, secure := range []bool{false, true} {
							// Kernel model.
							inactive := !IsActive(p.proto, cur)
							dir := hook
							clear := false
							if noOut {
								if hook == Output {
									clear = true
								} else {
									dir = InputOnly
								}
							}
							var next State
							if p.proto == TCP {
								next = TCPTransition(cur, dir, info, secure)
							} else {
								next = SCTPTransition(cur, dir, info, false)
							}
							flip, assure := NoFlip, false
							if next != cur {
								if !inactive && !IsActive(p.proto, next) {
									flip = ToInactive
								} else if inactive && IsActive(p.proto, next) {
									flip = ToActive
								}
								assure = next == TCPEstablished && p.proto == TCP ||
									next == SCTPEstablished && p.proto == SCTP
							}
							want := Transition{State: next, Dir: dir, Timeout: tm.For(p.proto, next),
								Flip: flip, ClearNoOutput: clear, Assure: assure}
							if got := tm.Step(p.proto, cur, hook, noOut, info, secure); got != want {
								t.Fatalf("Step(%d, %d, %s, noOutput=%v, %#x, secure=%v) = %+v, want %+v",
									p.proto, cur, hook, noOut, info, secure, got, want)
							}
						}
					}
				}
			}
		}
	}
}

func TestStepUDP(t *testing.T) {
	tm := DefaultTimeouts()
	for _, hook := range []Dir{Input, Output, InputOnly} {
		for _, noOut := range []bool{false, true} {
			got := tm.Step(UDP, UDPNormal, hook, noOut, 0xff, true)
			want := Transition{State: UDPNormal, Dir: hook, Timeout: 300 * time.Second, Assure: hook == Output}
			if got != want {
				t.Errorf("UDP %s noOutput=%v: %+v, want %+v", hook, noOut, got, want)
			}
		}
	}
	if got := tm.Step(IP, 7, Input, false, 0, false); got != (Transition{State: 7, Dir: Input}) {
		t.Errorf("IP: %+v", got)
	}
}

func TestSCTPFirstChunk(t *testing.T) {
	// chunk builds one chunk header with the given declared length and
	// pads the body to 4 bytes.
	chunk := func(typ uint8, length int) []byte {
		b := []byte{typ, 0, byte(length >> 8), byte(length)}
		pad := (length + 3) &^ 3
		if pad > 4 {
			b = append(b, make([]byte, pad-4)...)
		}
		return b
	}
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	for _, tc := range []struct {
		name         string
		in           []byte
		typ          uint8
		bundled, ok  bool
		wantEffChunk uint8
	}{
		{"empty", nil, 0, false, false, 0},
		{"short", []byte{ChunkInit, 0, 0}, 0, false, false, 0},
		{"init", chunk(ChunkInit, 20), ChunkInit, false, true, ChunkInit},
		{"cookie echo alone", chunk(ChunkCookieEcho, 36), ChunkCookieEcho, false, true, ChunkCookieEcho},
		{"cookie echo + abort", cat(chunk(ChunkCookieEcho, 36), chunk(ChunkAbort, 4)), ChunkCookieEcho, true, true, ChunkAbort},
		{"cookie echo odd length + abort", cat(chunk(ChunkCookieEcho, 37), chunk(ChunkAbort, 4)), ChunkCookieEcho, true, true, ChunkAbort},
		{"cookie ack + abort", cat(chunk(ChunkCookieAck, 4), chunk(ChunkAbort, 8)), ChunkCookieAck, true, true, ChunkAbort},
		{"cookie ack + data", cat(chunk(ChunkCookieAck, 4), chunk(ChunkData, 20)), ChunkCookieAck, false, true, ChunkCookieAck},
		{"cookie echo + data + abort", cat(chunk(ChunkCookieEcho, 8), chunk(ChunkData, 20), chunk(ChunkAbort, 4)), ChunkCookieEcho, false, true, ChunkCookieEcho},
		// The look-ahead needs a whole chunk header at the next offset.
		{"cookie ack + truncated abort", cat(chunk(ChunkCookieAck, 4), []byte{ChunkAbort, 0, 0}), ChunkCookieAck, false, true, ChunkCookieAck},
		// A declared length below the header size disables the look-ahead.
		{"cookie ack bad length", []byte{ChunkCookieAck, 0, 0, 2, ChunkAbort, 0, 0, 4}, ChunkCookieAck, false, true, ChunkCookieAck},
		{"cookie ack length beyond packet", []byte{ChunkCookieAck, 0, 0xff, 0xff, ChunkAbort, 0, 0, 4}, ChunkCookieAck, false, true, ChunkCookieAck},
		// Only COOKIE ECHO/ACK look ahead.
		{"shutdown + abort", cat(chunk(ChunkShutdown, 8), chunk(ChunkAbort, 4)), ChunkShutdown, false, true, ChunkShutdown},
	} {
		typ, bundled, ok := SCTPFirstChunk(tc.in)
		if typ != tc.typ || bundled != tc.bundled || ok != tc.ok {
			t.Errorf("%s: SCTPFirstChunk = %d, %v, %v; want %d, %v, %v", tc.name, typ, bundled, ok, tc.typ, tc.bundled, tc.ok)
		}
		if ok {
			if got := SCTPEffectiveChunk(typ, bundled); got != tc.wantEffChunk {
				t.Errorf("%s: SCTPEffectiveChunk = %d, want %d", tc.name, got, tc.wantEffChunk)
			}
		}
	}
}
