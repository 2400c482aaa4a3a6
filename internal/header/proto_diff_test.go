package header_test

import (
	"testing"

	"golvs/internal/header"
	"golvs/internal/proto"
)

// FuzzSCTPFirstChunkMatchesProto keeps header.SCTP.FirstChunk, a copy made
// because the packet views may not import proto, equal to the rule the
// state machine is tested with (proto.SCTPFirstChunk).
func FuzzSCTPFirstChunkMatchesProto(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{header.SCTPChunkInit, 0, 0, 20})
	f.Add([]byte{header.SCTPChunkCookieEcho, 0, 0, 5, 0, 0, 0, 0, header.SCTPChunkAbort, 0, 0, 4})
	f.Add([]byte{header.SCTPChunkCookieAck, 0, 0, 4, header.SCTPChunkAbort, 0, 0})
	f.Add([]byte{header.SCTPChunkCookieAck, 0, 0, 2, header.SCTPChunkAbort, 0, 0, 4})
	f.Fuzz(func(t *testing.T, chunks []byte) {
		pkt := append(make([]byte, header.SCTPCommonHeaderSize), chunks...)
		typ, bundled, ok := header.SCTP(pkt).FirstChunk()
		wtyp, wbundled, wok := proto.SCTPFirstChunk(chunks)
		if typ != wtyp || bundled != wbundled || ok != wok {
			t.Fatalf("FirstChunk = %d %v %v, proto.SCTPFirstChunk = %d %v %v", typ, bundled, ok, wtyp, wbundled, wok)
		}
	})
}

func TestSCTPChunkTypesMatchProto(t *testing.T) {
	for _, c := range []struct{ h, p uint8 }{
		{header.SCTPChunkData, proto.ChunkData},
		{header.SCTPChunkInit, proto.ChunkInit},
		{header.SCTPChunkInitAck, proto.ChunkInitAck},
		{header.SCTPChunkAbort, proto.ChunkAbort},
		{header.SCTPChunkShutdown, proto.ChunkShutdown},
		{header.SCTPChunkShutdownAck, proto.ChunkShutdownAck},
		{header.SCTPChunkError, proto.ChunkError},
		{header.SCTPChunkCookieEcho, proto.ChunkCookieEcho},
		{header.SCTPChunkCookieAck, proto.ChunkCookieAck},
		{header.SCTPChunkShutdownComplete, proto.ChunkShutdownComplete},
	} {
		if c.h != c.p {
			t.Errorf("chunk type %d in header, %d in proto", c.h, c.p)
		}
	}
}
