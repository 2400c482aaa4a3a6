package link

import (
	"errors"

	"golvs/internal/datapath"
)

// Batch is one data-path worker's view of a link: it receives frames in
// batches, carries out the pipeline's verdicts on them, and gets the
// buffers back. A Batch is owned by one goroutine (Recv, Send and Release
// are called in that order, batch after batch); Close is called once that
// goroutine has stopped.
//
// Buffers: the frames Recv hands out live in the link's own memory (the
// kernel's receive ring for AF_PACKET, the UMEM for AF_XDP), each with
// forward.Headroom bytes of headroom in front for in-place encapsulation
// and ICMP errors. They stay valid, and may be rewritten in place, until
// Release (or the next Recv). A frame that must outlive its batch is
// copied (the pipeline's neighbour parking does this).
type Batch interface {
	// Recv fills frames[:n] with received frames and returns n. It waits
	// for the first frame for a bounded time (the link's poll timeout)
	// or until woken, and may then return 0 frames and no error.
	// len(frames) bounds the batch.
	Recv(frames []datapath.Frame) (n int, err error)
	// Send carries out res[i] on frames[i] for every frame of the last
	// Recv (frames and res are that batch, in order): Transmit sends the
	// frame out of res[i].Ifindex, ToHost gives it to the host's stack
	// when the host's ingress rule kept the stack's own copy from it (see
	// the package doc), Drop discards it. It returns the number of frames
	// that left (transmitted or re-injected). Frames the kernel refuses
	// are counted and dropped; err is for a link that cannot go on.
	Send(frames []datapath.Frame, res []datapath.Result) (sent int, err error)
	// Release gives the buffers of the batch back to the link.
	Release() error
	// Close releases the link's resources. The Batch cannot be used
	// afterwards.
	Close() error
}

// Waker is implemented by a Batch whose Recv can be interrupted from
// another goroutine (an optional capability, checked by type assertion).
type Waker interface {
	// Wake makes a Recv that is waiting, or the next one, return at once.
	Wake()
}

// Processor decides on a batch of frames: res[i] is the verdict on
// frames[i]. *datapath.Worker is one.
type Processor interface {
	Process(frames []datapath.Frame, res []datapath.Result)
}

var _ Processor = (*datapath.Worker)(nil)

// ErrClosed is returned by a Batch used after Close.
var ErrClosed = errors.New("link: closed")

// Run loops Recv, Process, Send, Release over batches of up to
// datapath.BatchSize frames until stop is closed, and returns nil then, or
// the first error of the link. If b is a Waker, closing stop also wakes a
// waiting Recv; otherwise Run notices stop within the link's poll timeout.
// Run allocates its batch arrays once; the loop itself does not allocate.
func Run(b Batch, p Processor, stop <-chan struct{}) error {
	if w, ok := b.(Waker); ok {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-stop:
				w.Wake()
			case <-done:
			}
		}()
	}
	var (
		frames [datapath.BatchSize]datapath.Frame
		res    [datapath.BatchSize]datapath.Result
	)
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		n, err := b.Recv(frames[:])
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		p.Process(frames[:n], res[:n])
		if _, err := b.Send(frames[:n], res[:n]); err != nil {
			return err
		}
		if err := b.Release(); err != nil {
			return err
		}
	}
}
