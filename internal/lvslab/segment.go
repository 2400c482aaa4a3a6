package lvslab

import (
	"errors"
	"fmt"
	"io"
)

// Segment is an L2 broadcast domain: a learning switch joining the
// interfaces attached to it. A frame goes to the port that last sent from
// its destination MAC, or to every other port when that is unknown, a
// group address, or broadcast (IEEE 802.1D §7.7 forwarding, without aging:
// a station that moves is relearnt from its next frame, as after a
// gratuitous ARP).
//
// A Segment belongs to its Network and is driven by the same goroutine.
type Segment struct {
	n     *Network
	name  string
	ports []*Interface
	fdb   map[MAC]*Interface // learnt station locations

	drop func(frame []byte) bool
	pcap *pcapWriter

	delivered uint64
	filtered  uint64
}

// Name returns the segment's name.
func (s *Segment) Name() string { return s.name }

// Ports returns the interfaces attached to s, in attachment order.
func (s *Segment) Ports() []*Interface { return s.ports }

// SetDropFilter installs f, called once for every frame about to be
// delivered on s; returning true drops the frame (a lost frame on the
// wire). Nil removes the filter.
func (s *Segment) SetDropFilter(f func(frame []byte) bool) { s.drop = f }

// SetPCAP starts writing every frame delivered on s to w in libpcap format,
// the file header first. Nil stops. Write errors stop the capture and are
// returned by PCAPErr.
func (s *Segment) SetPCAP(w io.Writer) error {
	if w == nil {
		s.pcap = nil
		return nil
	}
	p := &pcapWriter{w: w}
	if err := p.writeHeader(); err != nil {
		return fmt.Errorf("segment %s: %w", s.name, err)
	}
	s.pcap = p
	return nil
}

// PCAPErr returns the first error writing the capture, if any.
func (s *Segment) PCAPErr() error {
	if s.pcap == nil {
		return nil
	}
	return s.pcap.err
}

// Delivered returns how many frames s has delivered.
func (s *Segment) Delivered() uint64 { return s.delivered }

// Filtered returns how many frames the drop filter dropped.
func (s *Segment) Filtered() uint64 { return s.filtered }

// ErrTooBig is returned by Host.Transmit for a frame larger than the
// interface's MTU plus the Ethernet header.
var ErrTooBig = errors.New("lvslab: frame exceeds the interface MTU")

// send queues frame from the interface from. It takes ownership of frame.
func (s *Segment) send(from *Interface, frame []byte) error {
	h := from.host
	if len(frame)-ethHdrLen > from.MTU() {
		h.drop(DropTooBig, from.index, frame)
		return ErrTooBig
	}
	if len(frame) < ethMinFrame {
		padded := make([]byte, ethMinFrame)
		copy(padded, frame)
		frame = padded
	}
	h.ctr.txFrames.Add(1)
	s.n.enqueue(event{seg: s, from: from, frame: frame})
	return nil
}

// deliver hands a frame sent from the interface from to the ports it
// reaches, each its own copy.
func (s *Segment) deliver(from *Interface, frame []byte) {
	if s.drop != nil && s.drop(frame) {
		s.filtered++
		s.n.trace(s, from, frame, " [dropped by filter]")
		s.n.report(Drop{Segment: s.name, Reason: DropFilter, Packet: frame})
		return
	}
	s.delivered++
	s.n.trace(s, from, frame, "")
	if s.pcap != nil {
		s.pcap.writeRecord(s.n.clk.Nanotime(), frame)
	}
	dst, src := macAt(frame[0:]), macAt(frame[6:])
	if !src.IsMulticast() {
		s.fdb[src] = from
	}
	if !dst.IsMulticast() {
		if to, ok := s.fdb[dst]; ok {
			if to != from && to.seg == s {
				to.host.receive(to.index, frame)
			}
			return
		}
	}
	for _, p := range s.ports {
		if p != from {
			p.host.receive(p.index, clone(frame))
		}
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
