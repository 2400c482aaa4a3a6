package sched

import (
	"encoding/binary"
	"math/bits"
)

// This file is the kernel's hsiphash as a 64-bit kernel computes it
// (lib/siphash.c, BITS_PER_LONG == 64). The mh scheduler needs it bit for bit:
// its Maglev permutations and its lookup both hash with hsiphash under fixed
// keys, so the same key gives the same real server as on a Linux director
// only if the hash is the kernel's.
//
// On 64-bit kernels hsiphash is not HalfSipHash: "on 64-bit, we make
// HalfSipHash1-3 actually be SipHash1-3, for performance reasons"
// (lib/siphash.c). It is SipHash with one compression and three finalization
// rounds, a 128-bit key made of the two unsigned longs of hsiphash_key_t, and
// the 64-bit result truncated to the u32 the function returns. (A 32-bit
// kernel computes the real HalfSipHash-1-3 and so lays out mh tables
// differently; GoLVS follows the 64-bit kernels that directors run.)

// sipKey is a SipHash key as the kernel's siphash_key_t and, on 64-bit,
// hsiphash_key_t hold it: key[0] and key[1] are the little-endian halves k0 and
// k1 of the 16-byte key of the SipHash paper.
type sipKey [2]uint64

// The SipHash initialisation constants, "somepseudorandomlygeneratedbytes"
// (SipHash paper §2, kernel PREAMBLE).
const (
	sipC0 = 0x736f6d6570736575
	sipC1 = 0x646f72616e646f6d
	sipC2 = 0x6c7967656e657261
	sipC3 = 0x7465646279746573
)

// sipRound is one SipRound (the kernel's SIPROUND macro).
func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}

// sipHash is SipHash-c-d of data under k with a 64-bit result: c = 2, d = 4
// is the kernel's siphash(), c = 1, d = 3 its 64-bit hsiphash before the
// truncation. It is the general (slow) form, for tests and references; the
// scheduler hashes with hsiphash1u32.
func sipHash(k sipKey, data []byte, c, d int) uint64 {
	v0, v1, v2, v3 := sipC0^k[0], sipC1^k[1], sipC2^k[0], sipC3^k[1]
	// The last block carries the length modulo 256 in its top byte.
	b := uint64(len(data)) << 56
	for ; len(data) >= 8; data = data[8:] {
		m := binary.LittleEndian.Uint64(data)
		v3 ^= m
		for range c {
			v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		}
		v0 ^= m
	}
	for i, x := range data {
		b |= uint64(x) << (8 * i)
	}
	v3 ^= b
	for range c {
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	}
	v0 ^= b
	// The finalisation constant 0xff (SipHash paper §2).
	v2 ^= 0xff
	for range d {
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	}
	return v0 ^ v1 ^ v2 ^ v3
}

// hsiphash is the kernel's hsiphash(data, len, key) on a 64-bit kernel:
// SipHash-1-3 truncated to 32 bits.
func hsiphash(k sipKey, data []byte) uint32 {
	return uint32(sipHash(k, data, 1, 3))
}

// hsiphash1u32 is the kernel's hsiphash_1u32(first, key) on a 64-bit kernel,
// equal to hsiphash of the four little-endian bytes of first (which is what
// hsiphash(&v, sizeof(v), key) hashes on a little-endian machine). It is the
// unrolled form the mh scheduler uses per packet.
func hsiphash1u32(k sipKey, first uint32) uint32 {
	v0, v1, v2, v3 := sipC0^k[0], sipC1^k[1], sipC2^k[0], sipC3^k[1]
	// A single, final block: length 4 in the top byte, the word at the bottom.
	b := uint64(4)<<56 | uint64(first)
	v3 ^= b
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= b
	v2 ^= 0xff
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return uint32(v0 ^ v1 ^ v2 ^ v3)
}
