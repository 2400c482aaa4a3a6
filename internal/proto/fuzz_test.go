package proto

import (
	"testing"
	"time"
)

// FuzzTransition: whatever the inputs, the transition functions never panic
// and, for the three protocols with connections, always give a valid state,
// a timeout from the table and consistent accounting.
func FuzzTransition(f *testing.F) {
	// Seeds: the transcripts' typical packets, the "no flags" case, and
	// out-of-range states and directions.
	f.Add(uint8(TCP), uint8(TCPNone), uint8(Input), false, uint8(FlagSYN), false)
	f.Add(uint8(TCP), uint8(TCPSynRecv), uint8(Output), true, uint8(FlagSYN|FlagACK), false)
	f.Add(uint8(TCP), uint8(TCPEstablished), uint8(Input), true, uint8(FlagFIN|FlagACK), true)
	f.Add(uint8(TCP), uint8(TCPEstablished), uint8(Input), false, uint8(0x08), false)
	f.Add(uint8(TCP), uint8(200), uint8(7), false, uint8(0xff), true)
	f.Add(uint8(SCTP), uint8(SCTPNone), uint8(Input), false, uint8(ChunkInit), false)
	f.Add(uint8(SCTP), uint8(SCTPCookieSent), uint8(Input), true, uint8(ChunkAbort), false)
	f.Add(uint8(SCTP), uint8(99), uint8(Output), true, uint8(0x40), false)
	f.Add(uint8(UDP), uint8(UDPNormal), uint8(Output), true, uint8(0), false)
	f.Add(uint8(UDP), uint8(5), uint8(9), false, uint8(0), false)
	f.Add(uint8(IP), uint8(1), uint8(Input), false, uint8(0), false)
	tm := DefaultTimeouts()
	f.Fuzz(func(t *testing.T, proto, cur, hook uint8, noOutput bool, info uint8, secure bool) {
		s, d := State(cur), Dir(hook)
		if got := TCPTransition(s, d, info, secure); !ValidState(TCP, got, false) {
			t.Fatalf("TCPTransition(%d, %d, %#x, %v) = %d", s, d, info, secure, got)
		}
		for _, bundled := range []bool{false, true} {
			if got := SCTPTransition(s, d, info, bundled); !ValidState(SCTP, got, false) {
				t.Fatalf("SCTPTransition(%d, %d, %d, %v) = %d", s, d, info, bundled, got)
			}
		}
		_ = StateName(proto, s, noOutput)
		_ = tm.For(proto, s)
		_, _ = d.Resolve(noOutput)

		tr := tm.Step(proto, s, d, noOutput, info, secure)
		switch proto {
		case TCP, UDP, SCTP:
		default:
			if tr.State != s || tr.Timeout != 0 || tr.Flip != NoFlip || tr.Assure || tr.ClearNoOutput {
				t.Fatalf("Step on protocol %d changed something: %+v", proto, tr)
			}
			return
		}
		if !ValidState(proto, tr.State, false) {
			t.Fatalf("Step(%d, %d, ...) gave invalid state %d", proto, s, tr.State)
		}
		if tr.Dir >= numDirs {
			t.Fatalf("Step gave direction %d", tr.Dir)
		}
		if tr.Timeout != tm.For(proto, tr.State) || tr.Timeout <= 0 || tr.Timeout > 15*time.Minute {
			t.Fatalf("Step timeout %v for %s", tr.Timeout, StateName(proto, tr.State, false))
		}
		was, is := IsActive(proto, s), IsActive(proto, tr.State)
		if want := map[[2]bool]Flip{{false, true}: ToActive, {true, false}: ToInactive}[[2]bool{was, is}]; tr.Flip != want {
			t.Fatalf("Step flip %d, active %v -> %v", tr.Flip, was, is)
		}
		if tr.ClearNoOutput && (!noOutput || proto == UDP) {
			t.Fatalf("Step clears NOOUTPUT that was not set or on UDP: %+v", tr)
		}
	})
}

// FuzzSCTPFirstChunk: any byte string is read without panicking, and the
// answer agrees with a plain reading of the first two chunk headers.
func FuzzSCTPFirstChunk(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{ChunkInit, 0, 0, 20})
	f.Add([]byte{ChunkCookieEcho, 0, 0, 5, 0, 0, 0, 0, ChunkAbort, 0, 0, 4})
	f.Add([]byte{ChunkCookieAck, 0, 0, 4, ChunkAbort, 0, 0, 4})
	f.Add([]byte{ChunkCookieAck, 0, 0, 3, ChunkAbort, 0, 0, 4})
	f.Add([]byte{ChunkCookieAck, 0, 0xff, 0xfd, ChunkAbort})
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, bundled, ok := SCTPFirstChunk(b)
		if ok != (len(b) >= 4) {
			t.Fatalf("ok=%v for %d bytes", ok, len(b))
		}
		if !ok {
			return
		}
		if typ != b[0] {
			t.Fatalf("type %d, first byte %d", typ, b[0])
		}
		n := int(b[2])<<8 | int(b[3])
		next := (n + 3) / 4 * 4
		want := (typ == ChunkCookieEcho || typ == ChunkCookieAck) && n >= 4 &&
			next+4 <= len(b) && b[next] == ChunkAbort
		if bundled != want {
			t.Fatalf("bundled=%v want %v for % x", bundled, want, b)
		}
	})
}
