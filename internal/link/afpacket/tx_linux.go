package afpacket

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// txSocket sends batches of frames with one sendmmsg(2): a packet socket
// that never receives (protocol 0), bypasses the qdisc (the frames are
// forwarded traffic, already queued once by their sender), and takes a
// virtio_net_hdr in front of each frame (PACKET_VNET_HDR), through which
// a frame with a partial checksum asks the egress to finish it. Each
// message names its interface (a sockaddr_ll), so one socket and one call
// serve every interface. The message, iovec and header arrays are built
// once; a frame's iovec points into its buffer (the receive ring, zero
// copy). Owned by one goroutine.
type txSocket struct {
	fd   int
	msgs []unix.Mmsghdr
	iov  []unix.Iovec // 2 per message: virtio header, frame
	vnet [][vnetHdrLen]byte
	sll  []unix.RawSockaddrLinklayer
	n    int // messages queued

	// Results of the last flush.
	bytes   uint64
	tooBig  int
	lastErr error
}

// newTxSocket opens a transmit socket for batches of up to capacity
// frames, with send buffer sndbuf.
func newTxSocket(capacity, sndbuf int) (_ *txSocket, err error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	t := &txSocket{
		fd:   fd,
		msgs: make([]unix.Mmsghdr, capacity),
		iov:  make([]unix.Iovec, 2*capacity),
		vnet: make([][vnetHdrLen]byte, capacity),
		sll:  make([]unix.RawSockaddrLinklayer, capacity),
	}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return nil, fmt.Errorf("afpacket: setsockopt PACKET_QDISC_BYPASS: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return nil, fmt.Errorf("afpacket: setsockopt PACKET_VNET_HDR: %w", err)
	}
	// SO_SNDBUFFORCE needs CAP_NET_ADMIN; else what net.core.wmem_max
	// allows.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sndbuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndbuf)
	}
	for k := range t.msgs {
		h := &t.msgs[k].Hdr
		h.Name = (*byte)(unsafe.Pointer(&t.sll[k]))
		h.Namelen = unix.SizeofSockaddrLinklayer
		h.Iov = &t.iov[2*k]
		h.Iovlen = 2
		t.iov[2*k].Base = &t.vnet[k][0]
		t.iov[2*k].Len = vnetHdrLen
		t.sll[k].Family = unix.AF_PACKET
	}
	return t, nil
}

// full reports whether no more frames can be queued before a flush.
func (t *txSocket) full() bool { return t.n == len(t.msgs) }

// add queues frame for ifindex with virtio header v. The caller checks
// full first.
func (t *txSocket) add(ifindex int, frame []byte, v vnetHdr) {
	k := t.n
	t.sll[k].Ifindex = int32(ifindex)
	v.put(t.vnet[k][:])
	t.iov[2*k+1].Base = &frame[0]
	t.iov[2*k+1].Len = uint64(len(frame))
	t.n++
}

// flush sends the queued frames and returns how many were sent and how
// many the kernel refused (each refused one is skipped, and the rest
// sent). It never blocks: a full send buffer refuses (EAGAIN), as a full
// device queue does (ENOBUFS).
func (t *txSocket) flush() (sent, errs int) {
	t.bytes, t.tooBig = 0, 0
	for start := 0; start < t.n; {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(t.fd),
			uintptr(unsafe.Pointer(&t.msgs[start])), uintptr(t.n-start), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			// sendmmsg reports an error only for its first message
			// (after one sent, it returns the count and drops the
			// error): that one is refused.
			errs++
			if e == unix.EMSGSIZE {
				t.tooBig++
			}
			t.lastErr = e
			start++
			continue
		}
		if r == 0 {
			errs += t.n - start // cannot happen; do not spin
			break
		}
		for k := start; k < start+int(r); k++ {
			t.bytes += t.iov[2*k+1].Len
		}
		sent += int(r)
		start += int(r)
	}
	t.n = 0
	return sent, errs
}

// close closes the socket and forgets the frames' buffers.
func (t *txSocket) close() {
	if t.fd >= 0 {
		unix.Close(t.fd)
		t.fd = -1
	}
	for k := range t.msgs {
		t.iov[2*k+1].Base = nil
	}
}
