package proto

import "testing"

// sink keeps the benchmarked results alive.
var sink Transition

// TestZeroAllocs: the per-packet functions allocate nothing (style.md §4.2).
func TestZeroAllocs(t *testing.T) {
	tm := DefaultTimeouts()
	chunks := []byte{ChunkCookieEcho, 0, 0, 8, 0, 0, 0, 0, ChunkAbort, 0, 0, 4}
	for name, fn := range map[string]func(){
		"Step TCP": func() {
			sink = tm.Step(TCP, TCPEstablished, Input, true, FlagFIN|FlagACK, false)
		},
		"Step SCTP": func() {
			typ, bundled, _ := SCTPFirstChunk(chunks)
			sink = tm.Step(SCTP, SCTPCookieSent, Input, false, SCTPEffectiveChunk(typ, bundled), false)
		},
		"Step UDP": func() { sink = tm.Step(UDP, UDPNormal, Output, false, 0, false) },
		"TCPTransition": func() {
			sink.State = TCPTransition(TCPSynRecv, Output, FlagSYN|FlagACK, true)
		},
		"SCTPTransition": func() {
			sink.State = SCTPTransition(SCTPInit1, InputOnly, ChunkCookieEcho, true)
		},
		"StateName": func() {
			if StateName(SCTP, SCTPCookieSent, false) == "" {
				t.Fatal("empty name")
			}
		},
	} {
		if n := testing.AllocsPerRun(1000, fn); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", name, n)
		}
	}
}

// BenchmarkStep runs a whole NAT TCP connection (SYN, SYN/ACK, ACK, data,
// FIN both ways, last ACK) per 8 iterations.
func BenchmarkStep(b *testing.B) {
	tm := DefaultTimeouts()
	seq := [...]struct {
		hook  Dir
		flags uint8
	}{
		{Input, FlagSYN}, {Output, FlagSYN | FlagACK}, {Input, FlagACK}, {Output, FlagACK | 0x08},
		{Input, FlagFIN | FlagACK}, {Output, FlagACK}, {Output, FlagFIN | FlagACK}, {Input, FlagACK},
	}
	b.ReportAllocs()
	s := TCPNone
	for i := 0; b.Loop(); i++ {
		p := seq[i%len(seq)]
		if i%len(seq) == 0 {
			s = TCPNone
		}
		sink = tm.Step(TCP, s, p.hook, false, p.flags, false)
		s = sink.State
	}
}

// BenchmarkStepSCTP includes reading the chunk list.
func BenchmarkStepSCTP(b *testing.B) {
	tm := DefaultTimeouts()
	chunks := []byte{ChunkCookieEcho, 0, 0, 8, 0, 0, 0, 0, ChunkData, 0, 0, 4}
	b.ReportAllocs()
	for b.Loop() {
		typ, bundled, _ := SCTPFirstChunk(chunks)
		sink = tm.Step(SCTP, SCTPCookieSent, Input, false, SCTPEffectiveChunk(typ, bundled), false)
	}
}
