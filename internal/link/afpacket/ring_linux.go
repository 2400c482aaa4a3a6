package afpacket

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"golvs/internal/forward"
)

// Sizes of the kernel's TPACKET_V3 structures (linux/if_packet.h).
const (
	// blockHdrOff is where struct tpacket_hdr_v1 sits in a block: after
	// the version and offset_to_priv words of struct tpacket_block_desc.
	blockHdrOff = 8
	// frameHdrLen is TPACKET3_HDRLEN: struct tpacket3_hdr (48 bytes,
	// already aligned to TPACKET_ALIGNMENT) and the struct sockaddr_ll
	// (20) that follows it. The kernel never puts frame data before
	// this, and the link never writes into it.
	frameHdrLen = unix.SizeofTpacket3Hdr + unix.SizeofSockaddrLinklayer
)

// ring is one TPACKET_V3 receive ring: a packet socket bound to one
// interface, its mmapped blocks, and where the owner's walk is. Owned by
// its queue's goroutine, but for the fd, which Stats reads from anywhere.
type ring struct {
	fd      int
	ifindex int
	mem     []byte
	bsize   int // block size
	nblocks int

	// The walk: the kernel hands whole blocks over (block_status
	// TP_STATUS_USER) in ring order; the owner reads their frames,
	// then gives them back (TP_STATUS_KERNEL) in the same order.
	cur  int    // block being read, or to be read next
	open bool   // cur was handed over and is being read
	left uint32 // frames of cur not yet read, the one at off included
	off  int    // offset in mem of the current frame's tpacket3_hdr
	seg  int    // next segment of the current frame, if it is a GSO frame
	gso  bool   // the current frame is a GSO frame being cut (f* below)
	// The current GSO frame, from its first segment on: where it
	// starts and how long it is (its tag restored), its virtio header,
	// its checksum start.
	fstart, flen, fcsum int
	fvnet               vnetHdr
	rel                 int // first block read but not yet given back
	done                int // blocks read but not given back, from rel on
}

// blockStatus returns a pointer to block i's block_status word.
func (r *ring) blockStatus(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[i*r.bsize+blockHdrOff]))
}

// blockHdr returns block i's header.
func (r *ring) blockHdr(i int) *unix.TpacketHdrV1 {
	return (*unix.TpacketHdrV1)(unsafe.Pointer(&r.mem[i*r.bsize+blockHdrOff]))
}

// frameHdr returns the header of the frame at off.
func (r *ring) frameHdr(off int) *unix.Tpacket3Hdr {
	return (*unix.Tpacket3Hdr)(unsafe.Pointer(&r.mem[off]))
}

// openBlock makes the next block current if the kernel handed it over,
// and reports whether it did. A block the owner holds (read, not given
// back) is never opened again: when all are held, the ring waits for
// Release.
func (r *ring) openBlock() bool {
	if r.done == r.nblocks {
		return false
	}
	// The kernel writes the block, then (after a write barrier) its
	// status; the atomic load orders the reads of the block after it.
	if atomic.LoadUint32(r.blockStatus(r.cur))&unix.TP_STATUS_USER == 0 {
		return false
	}
	h := r.blockHdr(r.cur)
	r.open = true
	r.left = h.Num_pkts
	r.off = r.cur*r.bsize + int(h.Offset_to_first_pkt)
	r.seg, r.gso = 0, false
	return true
}

// nextFrame moves past the current frame.
func (r *ring) nextFrame(h *unix.Tpacket3Hdr) {
	r.seg, r.gso = 0, false
	r.left--
	if r.left > 0 {
		r.off += int(h.Next_offset)
		return
	}
	r.closeBlock()
}

// closeBlock ends the reading of the current block; it is given back at
// the next release.
func (r *ring) closeBlock() {
	r.open = false
	r.done++
	r.cur = (r.cur + 1) % r.nblocks
}

// release gives the blocks read so far back to the kernel.
func (r *ring) release() {
	for ; r.done > 0; r.done-- {
		atomic.StoreUint32(r.blockStatus(r.rel), unix.TP_STATUS_KERNEL)
		r.rel = (r.rel + 1) % r.nblocks
	}
}

// ringConfig is the geometry of a ring.
type ringConfig struct {
	blockSize, blocks, frameSize int
	blockTimeoutMS               uint32
}

// openRing opens a packet socket on ifindex with a TPACKET_V3 receive
// ring, filter prog attached if not nil, and binds it. It is not yet in a
// fanout group.
func openRing(ifindex int, rc ringConfig, prog *unix.SockFprog) (_ *ring, err error) {
	// Protocol 0 until bind: a packet socket created with ETH_P_ALL
	// would receive from every interface, unfiltered, meanwhile.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	r := &ring{fd: fd, ifindex: ifindex, bsize: rc.blockSize, nblocks: rc.blocks}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	opts := []struct {
		name       string
		level, opt int
		val        int
	}{
		{"PACKET_VERSION", unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3},
		// Headroom in front of every frame (see the package doc).
		{"PACKET_RESERVE", unix.SOL_PACKET, unix.PACKET_RESERVE, forward.Headroom},
		// A virtio_net_hdr in front of every frame: where a partial
		// checksum starts, and a GSO frame's segment size.
		{"PACKET_VNET_HDR", unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1},
		// Not the frames this host sends (the link's own included).
		{"PACKET_IGNORE_OUTGOING", unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1},
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.val); err != nil {
			return nil, fmt.Errorf("afpacket: setsockopt %s: %w", o.name, err)
		}
	}
	if prog != nil {
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, prog); err != nil {
			return nil, fmt.Errorf("afpacket: attach filter: %w", err)
		}
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(rc.blockSize),
		Block_nr:       uint32(rc.blocks),
		Frame_size:     uint32(rc.frameSize),
		Frame_nr:       uint32(rc.blockSize / rc.frameSize * rc.blocks),
		Retire_blk_tov: rc.blockTimeoutMS,
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("afpacket: PACKET_RX_RING (%d blocks of %d bytes): %w", rc.blocks, rc.blockSize, err)
	}
	// The ring's pages are the kernel's and never swapped: no MAP_LOCKED
	// (which would count against RLIMIT_MEMLOCK for nothing).
	r.mem, err = unix.Mmap(fd, 0, rc.blockSize*rc.blocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return nil, fmt.Errorf("afpacket: bind to interface %d: %w", ifindex, err)
	}
	return r, nil
}

// close unmaps the ring and closes its socket.
func (r *ring) close() {
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}

// htons returns v in network byte order, as a sockaddr_ll's protocol.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
