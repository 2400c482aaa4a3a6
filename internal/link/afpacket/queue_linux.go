package afpacket

import (
	"encoding/binary"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"golvs/internal/checksum"
	"golvs/internal/datapath"
	"golvs/internal/flow"
	"golvs/internal/forward"
	"golvs/internal/header"
	"golvs/internal/link"
)

// Queue is one data-path worker's share of a Link: a receive ring on each
// interface (a member of the interface's fanout group when there are
// several queues), a transmit socket, and a pool of GSO segment buffers.
// It implements link.Batch and link.Waker. Recv, Send and Release belong
// to one goroutine; Wake and Stats may be called from any.
type Queue struct {
	l      *Link
	id     int
	rings  []*ring
	pfds   []unix.PollFd // the rings' sockets, then wakefd
	wake   int           // eventfd for Wake
	next   int           // ring the next Recv starts with
	batch  int
	pollMS int

	// The last batch: per-frame link data, and the segment buffers
	// used.
	last int
	meta []frameMeta
	segs []byte // batch buffers of segBufSize
	nseg int

	tx     *txSocket
	parsed flow.Parsed // for re-injection decisions

	st     counters
	fdMu   sync.Mutex // guards the sockets' lifetime against Stats
	closed atomic.Bool
}

var (
	_ link.Batch = (*Queue)(nil)
	_ link.Waker = (*Queue)(nil)
)

// frameMeta is what Send needs to know of a frame of the batch that the
// pipeline's Frame does not say: for a frame with a partial checksum,
// where the checksum starts, counted back from the frame's end (which no
// rewrite moves: encapsulation and VLAN changes happen at the front), and
// where in the transport header the checksum field is.
type frameMeta struct {
	csumFromEnd int
	csumOffset  uint16
}

// counters are a queue's counters.
type counters struct {
	rxFrames, rxBytes, truncated          atomic.Uint64
	gsoFrames, gsoSegments, gsoDropped    atomic.Uint64
	vlanRestored                          atomic.Uint64
	txFrames, txBytes, txErrors, txTooBig atomic.Uint64
	reinjected, toHost, unoffloaded       atomic.Uint64
	filterPassed, ringDrops, ringFreezes  atomic.Uint64
	linkErrors                            atomic.Uint64
}

func newQueue(l *Link, id int) (*Queue, error) {
	q := &Queue{
		l: l, id: id, batch: l.cfg.Batch,
		pollMS: int(max(1, l.cfg.PollTimeout.Milliseconds())),
		meta:   make([]frameMeta, l.cfg.Batch),
		segs:   make([]byte, l.cfg.Batch*segBufSize),
	}
	var err error
	q.wake, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	q.pfds = []unix.PollFd{{Fd: int32(q.wake), Events: unix.POLLIN}}
	q.tx, err = newTxSocket(l.cfg.Batch, l.cfg.SendBuffer)
	if err != nil {
		unix.Close(q.wake)
		return nil, err
	}
	return q, nil
}

// addRing adds a ring; the poll set holds the rings' sockets in order,
// then the wake eventfd.
func (q *Queue) addRing(r *ring) {
	q.rings = append(q.rings, r)
	q.pfds = q.pfds[:0]
	for _, r := range q.rings {
		q.pfds = append(q.pfds, unix.PollFd{Fd: int32(r.fd), Events: unix.POLLIN})
	}
	q.pfds = append(q.pfds, unix.PollFd{Fd: int32(q.wake), Events: unix.POLLIN})
}

// ID returns the queue's number.
func (q *Queue) ID() int { return q.id }

// Recv fills frames with received frames, up to the link's Batch; see
// link.Batch. It first gives back the blocks of the previous batch.
func (q *Queue) Recv(frames []datapath.Frame) (int, error) {
	if q.closed.Load() {
		return 0, link.ErrClosed
	}
	q.releaseRings()
	frames = frames[:min(len(frames), q.batch)]
	n := q.sweep(frames)
	if n == 0 {
		for {
			_, err := unix.Poll(q.pfds, q.pollMS)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return 0, os.NewSyscallError("poll", err)
			}
			break
		}
		if q.pfds[len(q.rings)].Revents&unix.POLLIN != 0 {
			var b [8]byte
			unix.Read(q.wake, b[:])
		}
		for i := range q.rings {
			if q.pfds[i].Revents&unix.POLLERR != 0 {
				// The interface went down or away (ENETDOWN): reading
				// the error clears it, else every poll would return at
				// once. The socket receives again when the interface
				// comes back up; a deleted one never does (the owner
				// reopens the link when interfaces change).
				unix.GetsockoptInt(q.rings[i].fd, unix.SOL_SOCKET, unix.SO_ERROR)
				q.st.linkErrors.Add(1)
			}
		}
		n = q.sweep(frames)
	}
	q.last = n
	if n > 0 {
		var bytes uint64
		for i := range frames[:n] {
			bytes += uint64(frames[i].Buf.Len)
		}
		q.st.rxFrames.Add(uint64(n))
		q.st.rxBytes.Add(bytes)
	}
	return n, nil
}

// sweep takes frames from the rings in turn, starting with a different
// ring each time so that a busy interface does not starve the others.
func (q *Queue) sweep(frames []datapath.Frame) int {
	q.nseg = 0
	n := 0
	for i := 0; i < len(q.rings) && n < len(frames); i++ {
		n = q.fill(q.rings[(q.next+i)%len(q.rings)], frames, n)
	}
	q.next++
	return n
}

// fill takes frames from one ring into frames[n:] and returns the new n.
func (q *Queue) fill(r *ring, frames []datapath.Frame, n int) int {
	for n < len(frames) {
		if !r.open {
			if !r.openBlock() {
				break
			}
			if r.left == 0 {
				r.closeBlock()
				continue
			}
		}
		h := r.frameHdr(r.off)
		var done bool
		n, done = q.take(r, h, frames, n)
		if !done {
			break // a GSO frame's segments go on in the next batch
		}
		r.nextFrame(h)
	}
	return n
}

// take turns the ring frame at h into frames[n] (or, for a GSO frame,
// into segments from frames[n] on) and returns the new n, and whether the
// ring frame is done with.
func (q *Queue) take(r *ring, h *unix.Tpacket3Hdr, frames []datapath.Frame, n int) (int, bool) {
	if r.gso {
		// The rest of a GSO frame begun in an earlier batch: its tag,
		// if any, is already back in place.
		return q.segments(r, r.mem[r.fstart:r.fstart+r.flen], r.fvnet, r.fcsum, frames, n)
	}
	status := h.Status
	snap := int(h.Snaplen)
	mac := int(h.Mac)
	if int(h.Len) != snap {
		q.st.truncated.Add(1)
		return n, true
	}
	// The kernel puts the frame at mac, after the headers, the
	// virtio header and the reserve; check that the headroom (and a tag)
	// fit between them before trusting it.
	if snap < ethHdrLen || mac < frameHdrLen+forward.Headroom+vlanHdrLen || r.off+mac+snap > len(r.mem) {
		q.st.truncated.Add(1)
		return n, true
	}
	start := r.off + mac
	v := readVnet(r.mem[start-vnetHdrLen : start])
	csumStart := int(v.csumStart)
	if status&unix.TP_STATUS_VLAN_VALID != 0 {
		// The kernel moved the 802.1Q tag into metadata: put it back
		// between the MAC addresses and the EtherType (the 12 address
		// bytes move 4 bytes forward, into the space the virtio header
		// took).
		tpid := header.EtherTypeVLAN
		if status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && h.Hv1.Vlan_tpid != 0 {
			tpid = h.Hv1.Vlan_tpid
		}
		m := r.mem
		copy(m[start-vlanHdrLen:start-vlanHdrLen+12], m[start:start+12])
		binary.BigEndian.PutUint16(m[start-vlanHdrLen+12:], tpid)
		binary.BigEndian.PutUint16(m[start-vlanHdrLen+14:], uint16(h.Hv1.Vlan_tci))
		start -= vlanHdrLen
		snap += vlanHdrLen
		csumStart += vlanHdrLen
		q.st.vlanRestored.Add(1)
	}
	if v.gsoType != vnetGSONone {
		r.gso = true
		r.fstart, r.flen, r.fvnet, r.fcsum = start, snap, v, csumStart
		q.st.gsoFrames.Add(1)
		return q.segments(r, r.mem[start:start+snap], v, csumStart, frames, n)
	}
	end := start + snap
	partial := status&unix.TP_STATUS_CSUMNOTREADY != 0
	frames[n] = datapath.Frame{
		Buf:         forward.Buf{B: r.mem[start-forward.Headroom : end : end], Off: forward.Headroom, Len: snap},
		Ifindex:     r.ifindex,
		PartialCsum: partial,
	}
	q.meta[n] = frameMeta{}
	if partial && v.flags&vnetFlagNeedsCsum != 0 && csumStart < snap {
		q.meta[n] = frameMeta{csumFromEnd: snap - csumStart, csumOffset: v.csumOffset}
	}
	return n + 1, true
}

// segments cuts the GSO frame into segments from frames[n] on, each in a
// segment buffer, from segment r.seg on, until the frame is done or the
// batch or the buffers are full.
func (q *Queue) segments(r *ring, frame []byte, v vnetHdr, csumStart int, frames []datapath.Frame, n int) (int, bool) {
	g, ok := parseGSO(frame, v, csumStart)
	if !ok || forward.Headroom+g.segLen(0) > segBufSize {
		q.st.gsoDropped.Add(1)
		return n, true
	}
	for r.seg < g.nseg {
		if n == len(frames) || q.nseg == q.batch {
			return n, false
		}
		buf := q.segs[q.nseg*segBufSize : (q.nseg+1)*segBufSize : (q.nseg+1)*segBufSize]
		ln := g.segment(r.seg, buf[forward.Headroom:])
		frames[n] = datapath.Frame{
			Buf:         forward.Buf{B: buf[: forward.Headroom+ln : forward.Headroom+ln], Off: forward.Headroom, Len: ln},
			Ifindex:     r.ifindex,
			PartialCsum: true,
		}
		q.meta[n] = frameMeta{csumFromEnd: ln - g.l4, csumOffset: uint16(g.csumOffset())}
		q.nseg++
		n++
		r.seg++
		q.st.gsoSegments.Add(1)
	}
	return n, true
}

// Send carries out the verdicts; see link.Batch.
func (q *Queue) Send(frames []datapath.Frame, res []datapath.Result) (int, error) {
	if q.closed.Load() {
		return 0, link.ErrClosed
	}
	var c *link.Compiled
	if q.l.cfg.Reinject {
		c = q.l.filter.Load()
	}
	sent := 0
	var toHost, reinjected, unoffloaded uint64
	for i := range frames {
		fr := &frames[i]
		if fr.Buf.Len <= 0 {
			continue
		}
		b := fr.Buf.Frame()
		var ifindex int
		switch res[i].Action {
		case datapath.Transmit:
			ifindex = res[i].Ifindex
		case datapath.ToHost:
			toHost++
			if c == nil {
				continue
			}
			q.parsed.Decode(b)
			if !c.Taken(&q.parsed) {
				continue // the host has its own copy
			}
			// The loopback device's address is all zeros: addressed
			// to it, the frame is PACKET_HOST there, and loopback_xmit
			// hands it to the stack as received.
			clear(b[0:6])
			ifindex = q.l.loIndex
			reinjected++
		default:
			continue
		}
		var v vnetHdr
		if fr.PartialCsum {
			var ok bool
			if v, ok = q.offload(i, b); !ok {
				unoffloaded++
			}
		}
		if q.tx.full() {
			sent += q.flush()
		}
		q.tx.add(ifindex, b, v)
	}
	sent += q.flush()
	if toHost > 0 {
		q.st.toHost.Add(toHost)
	}
	if reinjected > 0 {
		q.st.reinjected.Add(reinjected)
	}
	if unoffloaded > 0 {
		q.st.unoffloaded.Add(unoffloaded)
	}
	return sent, nil
}

// flush sends the queued frames and counts them.
func (q *Queue) flush() int {
	if q.tx.n == 0 {
		return 0
	}
	sent, errs := q.tx.flush()
	q.st.txFrames.Add(uint64(sent))
	q.st.txBytes.Add(q.tx.bytes)
	if errs > 0 {
		q.st.txErrors.Add(uint64(errs))
		q.st.txTooBig.Add(uint64(q.tx.tooBig))
	}
	return sent
}

// offload returns the virtio header that has the egress finish the
// partial transport checksum of frame i of the batch (its bytes b): the
// kernel computes it in software (skb_checksum_help) or the NIC does. It
// finishes the checksum here instead, returning no request, when the
// egress cannot be trusted with it:
//
//   - an SCTP CRC32c, which a virtio header cannot ask for;
//   - a checksum inside a tunnel (the pipeline encapsulated the frame):
//     a NIC may not find an inner header the skb does not mark as
//     encapsulated, a peer that decapsulates the bytes (a user-space
//     real server's IPIP socket, over veth, which passes the partial
//     state to its peer) would see the partial value, and an outer
//     checksum (GUE, GRE with checksum) covers the inner one: the outer
//     one is updated for the change (RFC 1624).
//
// A frame the pipeline made into an ICMP error (whose quoted packet
// merely contains the partial checksum) needs nothing. ok is false if the
// frame has a partial checksum Send cannot place.
func (q *Queue) offload(i int, b []byte) (vnetHdr, bool) {
	if i >= q.last || q.meta[i].csumFromEnd == 0 {
		return vnetHdr{}, false
	}
	m := q.meta[i]
	start := len(b) - m.csumFromEnd
	l3 := ethHdrLen
	if len(b) < ethHdrLen+vlanHdrLen {
		return vnetHdr{}, false
	}
	et := binary.BigEndian.Uint16(b[12:])
	if et == header.EtherTypeVLAN {
		l3 += vlanHdrLen
		et = binary.BigEndian.Uint16(b[16:])
	}
	var proto uint8
	var l4 int // the outer transport header
	switch {
	case et == header.EtherTypeIPv4 && len(b) >= l3+header.IPv4MinimumSize:
		proto = b[l3+9]
		l4 = l3 + int(b[l3]&0x0f)*4
	case et == header.EtherTypeIPv6 && len(b) >= l3+header.IPv6MinimumSize:
		proto = b[l3+6]
		l4 = l3 + header.IPv6MinimumSize
	default:
		return vnetHdr{}, false
	}
	if proto == header.ProtoICMPv4 || proto == header.ProtoICMPv6 {
		return vnetHdr{}, true
	}
	field := start + int(m.csumOffset)
	if start < l4 || field+2 > len(b) {
		return vnetHdr{}, false
	}
	if m.csumOffset != sctpCsumOffset && start == l4 {
		return vnetHdr{flags: vnetFlagNeedsCsum, csumStart: uint16(start), csumOffset: m.csumOffset}, true
	}
	// Finish it here.
	var old, new [4]byte
	n := 2
	if m.csumOffset == sctpCsumOffset {
		if field+4 > len(b) {
			return vnetHdr{}, false
		}
		n = 4
		copy(old[:], b[field:field+4])
		s := header.SCTP(b[start:])
		s.SetChecksum(s.CalculateChecksum())
		copy(new[:], b[field:field+4])
	} else {
		// The field holds the pseudo-header sum: summing the segment
		// with it in place gives the full sum (forward.CompleteChecksum).
		copy(old[:], b[field:field+2])
		c := ^checksum.Sum(b[start:], 0)
		if m.csumOffset == udpCsumOffset {
			c = checksum.ForUDP(c)
		}
		binary.BigEndian.PutUint16(b[field:], c)
		copy(new[:], b[field:field+2])
	}
	if start != l4 {
		patchOuter(b, proto, l4, field, old[:n], new[:n])
	}
	return vnetHdr{}, true
}

// Transport checksum offsets: UDP's (TCP's is at 16); SCTP's CRC32c,
// which is no Internet checksum.
const (
	udpCsumOffset  = 6
	sctpCsumOffset = 8
)

// patchOuter updates the outer checksum of an encapsulated frame (outer
// protocol proto, outer transport header at l4) for the change of the
// bytes at field from old to new: a GUE packet's UDP checksum unless 0
// (none), a GRE packet's if its C bit is set. Both cover the inner packet
// from an even offset, and every header before field has an even length,
// so the changed words are aligned.
func patchOuter(b []byte, proto uint8, l4, field int, old, new []byte) {
	var at int
	switch proto {
	case header.ProtoUDP:
		at = l4 + 6
	case header.ProtoGRE:
		if len(b) < l4+6 || binary.BigEndian.Uint16(b[l4:])&greFlagCsum == 0 {
			return
		}
		at = l4 + 4
	default:
		return // IPIP, IPv6-in-IPv6: no outer transport checksum
	}
	if (field-l4)%2 != 0 || at+2 > len(b) {
		return
	}
	c := binary.BigEndian.Uint16(b[at:])
	if proto == header.ProtoUDP && c == 0 {
		return
	}
	for w := 0; w < len(old); w += 2 {
		c = checksum.Update16(c, binary.BigEndian.Uint16(old[w:]), binary.BigEndian.Uint16(new[w:]))
	}
	if proto == header.ProtoUDP {
		c = checksum.ForUDP(c)
	}
	binary.BigEndian.PutUint16(b[at:], c)
}

// greFlagCsum is the C (checksum present) bit of the GRE flags (RFC
// 2784 §2.5).
const greFlagCsum = 0x8000

// Release gives the buffers of the last batch back; see link.Batch.
func (q *Queue) Release() error {
	if q.closed.Load() {
		return link.ErrClosed
	}
	q.releaseRings()
	return nil
}

func (q *Queue) releaseRings() {
	for _, r := range q.rings {
		r.release()
	}
	q.last = 0
}

// Wake makes a waiting Recv return; see link.Waker.
func (q *Queue) Wake() {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], 1)
	q.fdMu.Lock()
	if !q.closed.Load() {
		unix.Write(q.wake, b[:])
	}
	q.fdMu.Unlock()
}

// Close closes the queue's sockets and unmaps its rings. Its goroutine
// must have stopped.
func (q *Queue) Close() error {
	q.fdMu.Lock()
	defer q.fdMu.Unlock()
	if q.closed.Swap(true) {
		return nil
	}
	for _, r := range q.rings {
		r.close()
	}
	q.tx.close()
	unix.Close(q.wake)
	return nil
}

// Stats returns the queue's counters, reading the kernel's ring
// statistics (which reading resets: they are added up here).
func (q *Queue) Stats() Stats {
	q.fdMu.Lock()
	if !q.closed.Load() {
		for _, r := range q.rings {
			if s, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
				q.st.filterPassed.Add(uint64(s.Packets))
				q.st.ringDrops.Add(uint64(s.Drops))
				q.st.ringFreezes.Add(uint64(s.Freeze_q_cnt))
			}
		}
	}
	q.fdMu.Unlock()
	c := &q.st
	return Stats{
		RxFrames: c.rxFrames.Load(), RxBytes: c.rxBytes.Load(),
		FilterPassed: c.filterPassed.Load(), RingDrops: c.ringDrops.Load(), RingFreezes: c.ringFreezes.Load(),
		Truncated: c.truncated.Load(),
		GSOFrames: c.gsoFrames.Load(), GSOSegments: c.gsoSegments.Load(), GSODropped: c.gsoDropped.Load(),
		VLANRestored: c.vlanRestored.Load(),
		TxFrames:     c.txFrames.Load(), TxBytes: c.txBytes.Load(), TxErrors: c.txErrors.Load(), TxTooBig: c.txTooBig.Load(),
		Reinjected: c.reinjected.Load(), ToHost: c.toHost.Load(), CsumUnoffloaded: c.unoffloaded.Load(),
		LinkErrors: c.linkErrors.Load(),
	}
}
