package afpacket

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"golvs/internal/datapath"
	"golvs/internal/link"
)

// Config configures a Link. The zero value of each field but Interfaces
// is a default.
type Config struct {
	// Interfaces are the names of the interfaces to take frames from
	// and send frames out of. Frames can be sent out of any interface,
	// listed or not.
	Interfaces []string
	// Queues is the number of data-path workers, each with its own Queue
	// (a receive ring per interface, a transmit socket). With more than
	// one, each interface's rings form a PACKET_FANOUT group that keeps a
	// flow's both directions on one queue (see FanoutProgram). Default 1.
	Queues int
	// Filter selects the frames the data path sees; nil passes every
	// frame (tests, debugging). It can be replaced with SetFilter.
	Filter *link.Filter
	// Reinject says that the host's ingress rule keeps the frames the
	// Filter takes (link.Compiled.Taken) from the host's stack, so that
	// ToHost frames among them must be given to the stack by the link
	// (see the package doc). Without it, ToHost means "do nothing".
	Reinject bool
	// BlockSize and Blocks are the geometry of each receive ring: Blocks
	// blocks of BlockSize bytes (a multiple of the page size). The kernel
	// fills one block at a time and hands it over when it is full or
	// BlockTimeout has passed, so the ring holds Blocks*BlockSize bytes
	// of a burst, but at a low rate only about Blocks*BlockTimeout of
	// the reader's absence: both count. Default 64 blocks of 256 KiB:
	// 16 MiB per ring, about 75,000 small frames or 11,000 full-size ones
	// or 250 GSO frames of 64 KiB, and 64 ms of a stalled reader.
	BlockSize, Blocks int
	// FrameSize is the largest frame the ring holds whole (a longer one
	// arrives truncated and is dropped, counted). Default 128 KiB (at
	// most BlockSize): a 64 KiB GSO frame, the largest the kernel makes
	// without BIG TCP, with room for the headers in front.
	FrameSize int
	// BlockTimeout is how long the kernel waits for a block to fill
	// before handing it over anyway (retire_blk_tov, in milliseconds):
	// the latency a lone packet can see. Default 1 ms, the smallest.
	BlockTimeout time.Duration
	// PollTimeout bounds how long Recv waits for a frame. Default 100 ms.
	PollTimeout time.Duration
	// Batch is the largest batch Recv returns: the size of the queues'
	// per-batch arrays and of their pool of GSO segment buffers. Default
	// datapath.BatchSize.
	Batch int
	// SendBuffer is each transmit socket's SO_SNDBUF (SO_SNDBUFFORCE
	// when the process may). Default 4 MiB: a few batches of full-size
	// frames in flight, so that a burst is not refused while the
	// egress drains.
	SendBuffer int
}

// Defaults (see Config).
const (
	defaultBlockSize    = 256 << 10
	defaultBlocks       = 64
	defaultFrameSize    = 128 << 10
	defaultBlockTimeout = time.Millisecond
	defaultPollTimeout  = 100 * time.Millisecond
	defaultSendBuffer   = 4 << 20
	// segBufSize is the size of a GSO segment buffer: headroom, a VLAN
	// tag, and a 9000-byte jumbo frame's headers and payload, rounded up.
	// A GSO frame whose segments would not fit is dropped and counted.
	segBufSize = 10 << 10
)

// Link is a set of AF_PACKET sockets on the configured interfaces: Queues
// Queue values, one per data-path worker, and a transmit socket for
// WriteFrame. SetFilter, WriteFrame, Stats and Close are safe for
// concurrent use; each Queue belongs to one goroutine.
type Link struct {
	cfg      Config
	ifindex  []int // by Config.Interfaces position
	loIndex  int
	queues   []*Queue
	filter   atomic.Pointer[link.Compiled]
	coarse   atomic.Bool
	fanoutID []uint16 // per interface, with Queues > 1

	mu     sync.Mutex // serialises SetFilter and Close
	closed bool       // guarded by mu

	wmu sync.Mutex // serialises WriteFrame
	wtx *txSocket  // guarded by wmu
}

// Open opens the link. It needs CAP_NET_RAW (and CAP_NET_ADMIN for
// SO_SNDBUFFORCE, without which the send buffer is what the sysctls
// allow).
func Open(cfg Config) (_ *Link, err error) {
	if len(cfg.Interfaces) == 0 {
		return nil, errors.New("afpacket: no interfaces")
	}
	if cfg.Queues <= 0 {
		cfg.Queues = 1
	}
	if cfg.BlockSize <= 0 {
		cfg.BlockSize = defaultBlockSize
	}
	if cfg.Blocks <= 0 {
		cfg.Blocks = defaultBlocks
	}
	if cfg.FrameSize <= 0 {
		cfg.FrameSize = defaultFrameSize
	}
	cfg.FrameSize = min(cfg.FrameSize, cfg.BlockSize)
	if cfg.BlockTimeout <= 0 {
		cfg.BlockTimeout = defaultBlockTimeout
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = defaultPollTimeout
	}
	if cfg.Batch <= 0 {
		cfg.Batch = datapath.BatchSize
	}
	if cfg.SendBuffer <= 0 {
		cfg.SendBuffer = defaultSendBuffer
	}
	if cfg.BlockSize%os.Getpagesize() != 0 || cfg.FrameSize%unix.TPACKET_ALIGNMENT != 0 {
		return nil, fmt.Errorf("afpacket: block size %d must be a multiple of the page size, frame size %d of %d",
			cfg.BlockSize, cfg.FrameSize, unix.TPACKET_ALIGNMENT)
	}
	l := &Link{cfg: cfg}
	for _, name := range cfg.Interfaces {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("afpacket: %w", err)
		}
		if cfg.Reinject && ifc.Flags&net.FlagLoopback != 0 {
			// Re-injected frames arrive on the loopback interface: a
			// ring there would take them again, for ever.
			return nil, fmt.Errorf("afpacket: %s: the loopback interface cannot be a link that re-injects", name)
		}
		l.ifindex = append(l.ifindex, ifc.Index)
	}
	if cfg.Reinject {
		lo, err := loopbackIndex()
		if err != nil {
			return nil, err
		}
		l.loIndex = lo
	}

	var filterProg, fanoutProg *unix.SockFprog
	if cfg.Filter != nil {
		c, err := cfg.Filter.Compile()
		if err != nil {
			return nil, err
		}
		fp, coarse, err := FilterProgram(c)
		if err != nil {
			return nil, err
		}
		filterProg = sockFprog(fp)
		if cfg.Queues > 1 {
			p, err := FanoutProgram(c)
			if err != nil {
				return nil, err
			}
			fanoutProg = sockFprog(p)
		}
		l.filter.Store(c)
		l.coarse.Store(coarse)
	}

	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	rc := ringConfig{
		blockSize: cfg.BlockSize, blocks: cfg.Blocks, frameSize: cfg.FrameSize,
		blockTimeoutMS: uint32(max(1, cfg.BlockTimeout.Milliseconds())),
	}
	for i := 0; i < cfg.Queues; i++ {
		q, err := newQueue(l, i)
		if err != nil {
			return nil, err
		}
		l.queues = append(l.queues, q)
	}
	l.fanoutID = make([]uint16, len(l.ifindex))
	for j, ifindex := range l.ifindex {
		// Open every queue's ring, then join them to the interface's
		// fanout group in queue order: the kernel numbers a group's
		// sockets in the order they join, and the fanout program's
		// "hash modulo n" must pick the same queue on every interface.
		for _, q := range l.queues {
			r, err := openRing(ifindex, rc, filterProg)
			if err != nil {
				return nil, fmt.Errorf("afpacket: %s: %w", cfg.Interfaces[j], err)
			}
			q.addRing(r)
		}
		if cfg.Queues > 1 {
			id, err := l.joinFanout(j, fanoutProg)
			if err != nil {
				return nil, fmt.Errorf("afpacket: %s: %w", cfg.Interfaces[j], err)
			}
			l.fanoutID[j] = id
		}
	}
	l.wtx, err = newTxSocket(1, cfg.SendBuffer)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// loopbackIndex returns the index of the loopback interface.
func loopbackIndex() (int, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return 0, fmt.Errorf("afpacket: %w", err)
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			return ifc.Index, nil
		}
	}
	return 0, errors.New("afpacket: no loopback interface to re-inject frames into")
}

// joinFanout puts interface j's rings, in queue order, into a new fanout
// group and installs prog (nil: the kernel's flow hash). It returns the
// group's id.
func (l *Link) joinFanout(j int, prog *unix.SockFprog) (uint16, error) {
	// PACKET_FANOUT_FLAG_IGNORE_OUTGOING: in a group, the group's hook
	// replaces the sockets' own, so PACKET_IGNORE_OUTGOING must be said
	// again here.
	const flags = unix.PACKET_FANOUT_FLAG_IGNORE_OUTGOING
	typ := unix.PACKET_FANOUT_CBPF
	if prog == nil {
		typ = unix.PACKET_FANOUT_HASH
	}
	var id uint16
	for i, q := range l.queues {
		fd := q.rings[j].fd
		if i == 0 {
			// The kernel picks an unused group id (UNIQUEID), so that
			// another program's group cannot be joined by mistake.
			if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, (typ|flags|unix.PACKET_FANOUT_FLAG_UNIQUEID)<<16); err != nil {
				return 0, fmt.Errorf("PACKET_FANOUT: %w", err)
			}
			v, err := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
			if err != nil {
				return 0, fmt.Errorf("PACKET_FANOUT id: %w", err)
			}
			id = uint16(v)
			continue
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, int(id)|(typ|flags)<<16); err != nil {
			return 0, fmt.Errorf("PACKET_FANOUT join %d: %w", id, err)
		}
	}
	if prog != nil {
		if err := unix.SetsockoptSockFprog(l.queues[0].rings[j].fd, unix.SOL_PACKET, unix.PACKET_FANOUT_DATA, prog); err != nil {
			return 0, fmt.Errorf("PACKET_FANOUT_DATA: %w", err)
		}
	}
	return id, nil
}

// sockFprog converts a program for setsockopt.
func sockFprog(p []bpf.RawInstruction) *unix.SockFprog {
	fs := make([]unix.SockFilter, len(p))
	for i, ins := range p {
		fs[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	return &unix.SockFprog{Len: uint16(len(fs)), Filter: &fs[0]}
}

// NumQueues returns the number of queues.
func (l *Link) NumQueues() int { return len(l.queues) }

// Queue returns queue i (0-based), the Batch of worker i.
func (l *Link) Queue(i int) *Queue { return l.queues[i] }

// Ifindex returns the index of the i-th configured interface.
func (l *Link) Ifindex(i int) int { return l.ifindex[i] }

// Coarse reports whether the socket filter in place compares addresses
// only, the precise one being too large for the kernel (see
// FilterProgram).
func (l *Link) Coarse() bool { return l.coarse.Load() }

// SetFilter replaces the filter: the socket filter of every ring, the
// fanout program, and what re-injection compares with. The kernel swaps
// each program atomically; between the swaps of two sockets, a frame may
// meet the old filter on one and the new on the other. f must be a
// filter (a link opened without one keeps passing everything).
func (l *Link) SetFilter(f *link.Filter) error {
	c, err := f.Compile()
	if err != nil {
		return err
	}
	fp, coarse, err := FilterProgram(c)
	if err != nil {
		return err
	}
	var fanout *unix.SockFprog
	if len(l.queues) > 1 {
		p, err := FanoutProgram(c)
		if err != nil {
			return err
		}
		fanout = sockFprog(p)
	}
	prog := sockFprog(fp)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return link.ErrClosed
	}
	if l.filter.Load() == nil {
		return errors.New("afpacket: the link was opened without a filter")
	}
	for _, q := range l.queues {
		for _, r := range q.rings {
			// SO_ATTACH_FILTER on a socket with a filter replaces it
			// (SO_LOCK_FILTER is never set).
			if err := unix.SetsockoptSockFprog(r.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, prog); err != nil {
				return fmt.Errorf("afpacket: replace filter: %w", err)
			}
		}
	}
	if fanout != nil {
		for j := range l.ifindex {
			if err := unix.SetsockoptSockFprog(l.queues[0].rings[j].fd, unix.SOL_PACKET, unix.PACKET_FANOUT_DATA, fanout); err != nil {
				return fmt.Errorf("afpacket: replace fanout program: %w", err)
			}
		}
	}
	l.filter.Store(c)
	l.coarse.Store(coarse)
	return nil
}

// WriteFrame sends one whole Ethernet frame out of ifindex, for frames
// the pipeline keeps outside the rings (the neighbour table's parked
// frames, re-sent once their next hop is known). Its transport checksum
// must be complete. Safe for concurrent use with the queues.
func (l *Link) WriteFrame(ifindex int, frame []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.wtx == nil {
		return link.ErrClosed
	}
	tx := l.wtx
	tx.add(ifindex, frame, vnetHdr{})
	sent, errs := tx.flush()
	if errs > 0 || sent != 1 {
		return fmt.Errorf("afpacket: send on interface %d: %w", ifindex, tx.lastErr)
	}
	return nil
}

// Close closes every queue and socket. The queues' goroutines must have
// stopped (Wake them first).
func (l *Link) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	for _, q := range l.queues {
		q.Close()
	}
	l.wmu.Lock()
	if l.wtx != nil {
		l.wtx.close()
		l.wtx = nil
	}
	l.wmu.Unlock()
	return nil
}

// Stats are a link's counters (Link.Stats sums the queues').
type Stats struct {
	// RxFrames and RxBytes count the frames Recv handed out (each
	// segment of a GSO frame counted once).
	RxFrames, RxBytes uint64
	// FilterPassed counts the frames the socket filter passed, ring
	// drops included (PACKET_STATISTICS tp_packets); RingDrops those
	// the kernel dropped because the ring was full (tp_drops), and
	// RingFreezes how often it was (tp_freeze_q_cnt).
	FilterPassed, RingDrops, RingFreezes uint64
	// Truncated counts frames longer than FrameSize, dropped.
	Truncated uint64
	// GSOFrames counts GSO frames cut into GSOSegments segments;
	// GSODropped those that could not be (another GSO type, malformed,
	// segments larger than a segment buffer).
	GSOFrames, GSOSegments, GSODropped uint64
	// VLANRestored counts frames whose 802.1Q tag the kernel had moved
	// to metadata and Recv put back (only without a filter: the filter
	// leaves tagged frames to the VLAN's interface).
	VLANRestored uint64
	// TxFrames and TxBytes count the frames sent (re-injected ones
	// included); TxErrors those the kernel refused (TxTooBig of them
	// because they exceed the egress MTU).
	TxFrames, TxBytes, TxErrors, TxTooBig uint64
	// Reinjected counts ToHost frames given to the host's stack through
	// the loopback interface; ToHost all ToHost verdicts.
	Reinjected, ToHost uint64
	// CsumUnoffloaded counts frames with a partial checksum whose
	// completion could not be left to the egress (the pipeline moved the
	// transport header out of reach): sent as they were.
	CsumUnoffloaded uint64
	// LinkErrors counts errors the receive sockets reported (ENETDOWN
	// when an interface goes down or away).
	LinkErrors uint64
}

// Add adds o to s (the counters of links that came one after the other).
func (s *Stats) Add(o *Stats) {
	s.RxFrames += o.RxFrames
	s.RxBytes += o.RxBytes
	s.FilterPassed += o.FilterPassed
	s.RingDrops += o.RingDrops
	s.RingFreezes += o.RingFreezes
	s.Truncated += o.Truncated
	s.GSOFrames += o.GSOFrames
	s.GSOSegments += o.GSOSegments
	s.GSODropped += o.GSODropped
	s.VLANRestored += o.VLANRestored
	s.TxFrames += o.TxFrames
	s.TxBytes += o.TxBytes
	s.TxErrors += o.TxErrors
	s.TxTooBig += o.TxTooBig
	s.Reinjected += o.Reinjected
	s.ToHost += o.ToHost
	s.CsumUnoffloaded += o.CsumUnoffloaded
	s.LinkErrors += o.LinkErrors
}

// Stats returns the sum of the queues' counters.
func (l *Link) Stats() Stats {
	var s Stats
	for _, q := range l.queues {
		qs := q.Stats()
		s.Add(&qs)
	}
	return s
}
