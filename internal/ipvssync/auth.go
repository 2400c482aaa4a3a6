package ipvssync

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// TrailerLen is the length of the trailer of a signed message.
	TrailerLen = 40
	// TagLen is the length of the truncated HMAC-SHA-256 tag.
	TagLen = 16
	// AlgHMACSHA256128 is the only algorithm: HMAC-SHA-256 truncated to
	// 128 bits.
	AlgHMACSHA256128 = 1
	// MinKeyLen is the shortest key accepted (128 bits).
	MinKeyLen = 16
	// DefaultMaxAge is the default Verifier.MaxAge: a message may be
	// this old or this far in the future. A master sends a message at
	// most FlushTime after its first entry; the rest is clock skew
	// between directors and queueing.
	DefaultMaxAge = 30 * time.Second
	// replayWindow is the width of the anti-replay window (a uint64).
	replayWindow = 64
	// DefaultMaxSenders bounds the senders a Verifier tracks.
	DefaultMaxSenders = 256
)

// Errors of Verify.
var (
	// ErrUnsigned: a message without a trailer (a plain kernel message).
	ErrUnsigned = errors.New("ipvssync: message not signed")
	// ErrUnknownKey: a key ID the Verifier does not have.
	ErrUnknownKey = errors.New("ipvssync: unknown key ID")
	// ErrForged: the tag does not match (wrong key, altered message), or
	// an unknown algorithm or non-zero reserved byte.
	ErrForged = errors.New("ipvssync: bad message authentication tag")
	// ErrStale: the timestamp is more than MaxAge away from now.
	ErrStale = errors.New("ipvssync: stale message")
	// ErrReplay: a sequence number already accepted, or too old for the
	// window.
	ErrReplay = errors.New("ipvssync: replayed message")
	// ErrTooManySenders: MaxSenders senders heard from within MaxAge.
	ErrTooManySenders = errors.New("ipvssync: too many senders")
	// ErrNotV1: Sign was given something else than a version-1 message.
	ErrNotV1 = errors.New("ipvssync: not a version-1 message")
)

// Key is a shared secret with its ID.
type Key struct {
	ID     uint16
	Secret []byte // at least MinKeyLen bytes
}

// Signer signs the messages of one sender (GoLVS, not in the kernel). It
// is safe for concurrent use.
//
// A signed message is a version-1 message whose version byte is
// AuthVersion, followed by a 40-byte trailer:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      0        |    SyncID     |   Size (header + entries)     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Count Conns  |  Version (2)  |        Spare, set to 0        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~          entries, exactly as in a version-1 message           ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           Sender ID                           |  trailer
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Key ID             |  Algorithm (1)|  Reserved (0) |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                   Sequence number (64 bits)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Timestamp, Unix nanoseconds (64 bits)              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|       Tag: HMAC-SHA-256 of all the bytes before it,           |
//	|       truncated to its first 16 bytes (RFC 4868's             |
//	|       HMAC-SHA-256-128)                                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Why this framing:
//   - A kernel backup drops a signed message whole and creates nothing:
//     its first check after the 4-byte minimum is that the datagram's
//     length equals the header's Size, and Size leaves out the 40-byte
//     trailer. Were that check gone, Version 2 would make it read the
//     message as version 0, whose entry count is the first byte, 0. A
//     GoLVS backup without a key reports ErrSigned.
//   - Changing only the version byte keeps the rest byte for byte the
//     kernel's format: Verify hands back a plain version-1 message.
//   - The tag covers the header (Size, Version, SyncID) and the trailer
//     fields, so none can be changed. 128 bits of tag are RFC 4868's
//     choice for IPsec; 16 more bytes per 1472-byte message would buy
//     nothing against an online forger.
//   - Replays: the Sequence number rises by one per message of a
//     sender, starting from the wall-clock time in nanoseconds when the
//     Signer was made, so that a restarted sender continues above the
//     numbers it used before. A Verifier keeps, per sender, the highest
//     number accepted and a 64-message window below it (RFC 4303's
//     anti-replay window), so messages reordered by the network still
//     pass once. The Timestamp bounds the age of a message (MaxAge),
//     which also lets the Verifier forget senders it has not heard from
//     for MaxAge. Sender IDs tell masters apart (one per sync thread:
//     threads send independently).
//   - Key IDs allow a key rollover: the Verifier accepts several keys.
type Signer struct {
	sender uint32
	keyID  uint16
	seq    atomic.Uint64
	mu     sync.Mutex
	mac    hash.Hash // guarded by mu
	sum    [sha256.Size]byte
}

// NewSigner returns a Signer for sender with key k. start is the
// wall-clock time in Unix nanoseconds (time.Now().UnixNano()): the first
// sequence number.
func NewSigner(sender uint32, k Key, start int64) (*Signer, error) {
	if len(k.Secret) < MinKeyLen {
		return nil, fmt.Errorf("%w: key of %d bytes, want at least %d", ErrConfig, len(k.Secret), MinKeyLen)
	}
	s := &Signer{sender: sender, keyID: k.ID, mac: hmac.New(sha256.New, k.Secret)}
	s.seq.Store(uint64(start))
	return s, nil
}

// Sign turns msg, a complete version-1 message (from Builder.Flush), into
// a signed one in place: it sets the version byte to AuthVersion and
// appends the trailer with the next sequence number and the timestamp now
// (Unix nanoseconds). msg should have TrailerLen bytes of spare capacity
// (BuilderConfig.Reserve) or it is copied. The header's Size is left as
// it is.
func (s *Signer) Sign(msg []byte, now int64) ([]byte, error) {
	if len(msg) < HeaderLenV1 || msg[0] != 0 || msg[5] != Version1 || msg[6] != 0 || msg[7] != 0 ||
		int(binary.BigEndian.Uint16(msg[2:])) != len(msg) || len(msg)+TrailerLen > 65535 {
		return msg, ErrNotV1
	}
	seq := s.seq.Add(1) - 1
	msg[5] = AuthVersion
	b := binary.BigEndian
	msg = b.AppendUint32(msg, s.sender)
	msg = b.AppendUint16(msg, s.keyID)
	msg = append(msg, AlgHMACSHA256128, 0)
	msg = b.AppendUint64(msg, seq)
	msg = b.AppendUint64(msg, uint64(now))
	s.mu.Lock()
	s.mac.Reset()
	s.mac.Write(msg)
	tag := s.mac.Sum(s.sum[:0])
	msg = append(msg, tag[:TagLen]...)
	s.mu.Unlock()
	return msg, nil
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Keys are the keys accepted, by ID (at least one).
	Keys []Key
	// MaxAge is how far from now a timestamp may be (0: DefaultMaxAge).
	MaxAge time.Duration
	// MaxSenders bounds the senders tracked (0: DefaultMaxSenders).
	MaxSenders int
}

// Verifier checks signed messages. It is safe for concurrent use.
type Verifier struct {
	maxAge     int64
	maxSenders int

	mu      sync.Mutex
	keys    map[uint16]hash.Hash    // guarded by mu
	senders map[uint32]*replayState // guarded by mu
	sum     [sha256.Size]byte       // guarded by mu
}

// replayState is a sender's anti-replay window (RFC 4303 §3.4.3).
type replayState struct {
	top    uint64 // highest sequence number accepted
	bitmap uint64 // bit i: top-i accepted
	last   int64  // timestamp of the latest accepted message
}

// NewVerifier returns a Verifier.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if len(cfg.Keys) == 0 {
		return nil, fmt.Errorf("%w: no key", ErrConfig)
	}
	if cfg.MaxAge < 0 || cfg.MaxSenders < 0 {
		return nil, fmt.Errorf("%w: negative MaxAge or MaxSenders", ErrConfig)
	}
	v := &Verifier{
		maxAge:     int64(cfg.MaxAge),
		maxSenders: cfg.MaxSenders,
		keys:       make(map[uint16]hash.Hash, len(cfg.Keys)),
		senders:    make(map[uint32]*replayState),
	}
	if v.maxAge == 0 {
		v.maxAge = int64(DefaultMaxAge)
	}
	if v.maxSenders == 0 {
		v.maxSenders = DefaultMaxSenders
	}
	for _, k := range cfg.Keys {
		if len(k.Secret) < MinKeyLen {
			return nil, fmt.Errorf("%w: key %d of %d bytes, want at least %d", ErrConfig, k.ID, len(k.Secret), MinKeyLen)
		}
		if _, dup := v.keys[k.ID]; dup {
			return nil, fmt.Errorf("%w: key ID %d twice", ErrConfig, k.ID)
		}
		v.keys[k.ID] = hmac.New(sha256.New, k.Secret)
	}
	return v, nil
}

// Verify checks a signed message received at now (Unix nanoseconds) and
// returns the plain version-1 message inside it: msg[:Size], with its
// version byte set back to 1 (msg is modified in place, only on success),
// ready for Reader. The checks, in order: a signed header and a length of
// Size+TrailerLen (else ErrUnsigned), a known key (ErrUnknownKey), the
// tag (ErrForged), the age (ErrStale), then the sequence number
// (ErrReplay, ErrTooManySenders). Only a message that passes them all is
// recorded against replays.
func (v *Verifier) Verify(msg []byte, now int64) ([]byte, error) {
	if len(msg) < HeaderLenV1+TrailerLen || msg[0] != 0 || msg[5] != AuthVersion || msg[6] != 0 || msg[7] != 0 {
		return nil, ErrUnsigned
	}
	size := int(binary.BigEndian.Uint16(msg[2:]))
	if size < HeaderLenV1 || size+TrailerLen != len(msg) {
		return nil, ErrUnsigned
	}
	t := msg[size:]
	b := binary.BigEndian
	sender := b.Uint32(t)
	keyID := b.Uint16(t[4:])
	if t[6] != AlgHMACSHA256128 || t[7] != 0 {
		return nil, ErrForged
	}
	seq := b.Uint64(t[8:])
	ts := int64(b.Uint64(t[16:]))

	v.mu.Lock()
	defer v.mu.Unlock()
	mac, ok := v.keys[keyID]
	if !ok {
		return nil, ErrUnknownKey
	}
	mac.Reset()
	mac.Write(msg[:len(msg)-TagLen])
	sum := mac.Sum(v.sum[:0])
	if !hmac.Equal(sum[:TagLen], msg[len(msg)-TagLen:]) {
		return nil, ErrForged
	}
	if d := now - ts; d > v.maxAge || d < -v.maxAge {
		return nil, ErrStale
	}
	st := v.senders[sender]
	if st == nil {
		if len(v.senders) >= v.maxSenders {
			v.forget(now)
			if len(v.senders) >= v.maxSenders {
				return nil, ErrTooManySenders
			}
		}
		st = &replayState{top: seq, bitmap: 1, last: ts}
		v.senders[sender] = st
	} else if !st.accept(seq) {
		return nil, ErrReplay
	}
	st.last = max(st.last, ts)
	msg[5] = Version1
	return msg[:size], nil
}

// accept records seq if it is new and within the window.
func (st *replayState) accept(seq uint64) bool {
	if seq > st.top {
		if d := seq - st.top; d >= replayWindow {
			st.bitmap = 1
		} else {
			st.bitmap = st.bitmap<<d | 1
		}
		st.top = seq
		return true
	}
	d := st.top - seq
	if d >= replayWindow || st.bitmap>>d&1 != 0 {
		return false
	}
	st.bitmap |= 1 << d
	return true
}

// forget drops the senders not heard from for MaxAge: any message of
// theirs that could still be replayed is stale.
func (v *Verifier) forget(now int64) {
	for id, st := range v.senders {
		if now-st.last > v.maxAge {
			delete(v.senders, id)
		}
	}
}
