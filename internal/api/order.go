package api

import (
	"slices"

	"golvs/internal/service"
)

// The kernel lists services (ipvsadm -L --nosort, -S --nosort) in the
// order of its two service hash tables (ip_vs_ctl.c): the table of
// (protocol, address, port) services, then the table of fwmark services,
// each bucket by bucket, and within a bucket the most recently added first
// (hlist_add_head). State reproduces that order.
//
// ip_vs_svc_hashkey:
//
//	ahash = ntohl(addr) (IPv6: the XOR of the four 32-bit words)
//	ahash ^= (size_t)ipvs >> 8
//	bucket = (proto ^ ahash ^ (port >> 8) ^ port) & 0xff
//
// and ip_vs_svc_fwm_hashkey: bucket = (((size_t)ipvs >> 8) ^ fwmark) & 0xff.

// svcTabMask is IP_VS_SVC_TAB_MASK: the tables have 2^8 buckets
// (IP_VS_SVC_TAB_BITS).
const svcTabMask = 1<<8 - 1

// svcTabSalt stands for the kernel's ((size_t)ipvs >> 8): the address of
// the network namespace's IPVS structure, an accident of the boot that
// permutes the buckets. Only its low byte matters. 0x60 is what the oracle
// VM's kernel used (the only value under which its --nosort transcript is
// in bucket order), so that GoLVS lists in the same order as that kernel.
const svcTabSalt = 0x60

// svcBucket returns the hash bucket of a service key.
func svcBucket(k service.Key) uint32 {
	if k.IsFWMark() {
		return (svcTabSalt ^ k.FWMark) & svcTabMask
	}
	var fold uint32
	if k.Addr.Is4() {
		b := k.Addr.As4()
		fold = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	} else {
		b := k.Addr.As16()
		for i := 0; i < 16; i += 4 {
			fold ^= uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
		}
	}
	port := uint32(k.Port)
	return (uint32(k.Proto) ^ fold ^ svcTabSalt ^ (port >> 8) ^ port) & svcTabMask
}

// kernelOrder returns svcs (in the order they were added, as control
// keeps them) in the kernel's listing order.
func kernelOrder(svcs []*service.Service) []*service.Service {
	out := make([]*service.Service, len(svcs))
	// Newest first within a bucket: reverse, then a stable sort.
	for i, s := range svcs {
		out[len(svcs)-1-i] = s
	}
	slices.SortStableFunc(out, func(a, b *service.Service) int {
		af, bf := a.Key.IsFWMark(), b.Key.IsFWMark()
		switch {
		case af != bf:
			if af {
				return 1
			}
			return -1
		}
		return int(svcBucket(a.Key)) - int(svcBucket(b.Key))
	})
	return out
}
