package link

import (
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"golvs/internal/datapath"
)

// fakeBatch is a Batch that hands out a given number of one-frame
// batches, then waits (as a link's poll) until woken.
type fakeBatch struct {
	mu       sync.Mutex
	left     int
	calls    []string
	wake     chan struct{}
	failRecv error
}

func (f *fakeBatch) log(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeBatch) Recv(frames []datapath.Frame) (int, error) {
	if f.failRecv != nil {
		return 0, f.failRecv
	}
	f.mu.Lock()
	n := 0
	if f.left > 0 {
		f.left--
		n = 1
	}
	f.mu.Unlock()
	if n == 0 {
		select {
		case <-f.wake:
		case <-time.After(time.Second):
		}
		return 0, nil
	}
	f.log("recv")
	frames[0] = datapath.Frame{Ifindex: 7}
	return 1, nil
}

func (f *fakeBatch) Send(frames []datapath.Frame, res []datapath.Result) (int, error) {
	f.log("send")
	return len(frames), nil
}

func (f *fakeBatch) Release() error { f.log("release"); return nil }
func (f *fakeBatch) Close() error   { return nil }
func (f *fakeBatch) Wake() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

type countProc struct{ n int }

func (c *countProc) Process(frames []datapath.Frame, res []datapath.Result) {
	for i := range frames {
		c.n++
		res[i] = datapath.Result{Action: datapath.Drop}
	}
}

// TestRun: batches go Recv, Process, Send, Release in order; closing stop
// wakes a waiting Recv and ends Run without leaving a goroutine behind.
func TestRun(t *testing.T) {
	before := runtime.NumGoroutine()
	b := &fakeBatch{left: 3, wake: make(chan struct{}, 1)}
	p := &countProc{}
	stop := make(chan struct{})
	done := make(chan error)
	go func() { done <- Run(b, p, stop) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		n := len(b.calls)
		b.mu.Unlock()
		if n == 9 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Run took %v to stop: the waiting Recv was not woken", d)
	}
	if p.n != 3 {
		t.Errorf("processed %d frames, want 3", p.n)
	}
	for i, c := range b.calls {
		if want := []string{"recv", "send", "release"}[i%3]; c != want {
			t.Fatalf("call %d is %s, want %s (%v)", i, c, want, b.calls)
		}
	}
	for i := 0; i < 100 && runtime.NumGoroutine() > before; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines before Run, %d after", before, n)
	}
}

// TestRunError: a link error ends Run with it.
func TestRunError(t *testing.T) {
	boom := errors.New("boom")
	if err := Run(&fakeBatch{failRecv: boom, wake: make(chan struct{})}, &countProc{}, make(chan struct{})); !errors.Is(err, boom) {
		t.Errorf("Run returned %v", err)
	}
}
