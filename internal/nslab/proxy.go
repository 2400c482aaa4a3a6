package nslab

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// proxyDialTimeout bounds a connection into a director's namespace
// (loopback: it succeeds or is refused at once).
const proxyDialTimeout = 2 * time.Second

// proxy makes a director's status page, which lvsd serves on 127.0.0.1
// inside the director's namespace, reachable on 127.0.0.1 of the host's
// own namespace without adding any interface to it: it listens on the
// host and opens each connection's other end from inside the namespace
// (a socket made on a thread moved there).
type proxy struct {
	ln     net.Listener
	target func() string // the namespace to dial into, per connection ("" = none: refuse)
	port   int           // the port in the namespace

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// listenProxy listens on 127.0.0.1:hostPort (0 = any free port; a busy
// port also falls back to a free one, reported by the caller).
func listenProxy(hostPort int, target func() string, port int) (*proxy, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(hostPort))
	if err != nil && hostPort != 0 {
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
	}
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target, port: port, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// addr is the host address it listens on.
func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

// track registers a connection; false once the proxy is closing.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns != nil {
		delete(p.conns, c)
	}
}

func (p *proxy) serve(c net.Conn) {
	defer c.Close()
	defer p.untrack(c)
	ns := p.target()
	if ns == "" {
		return
	}
	up, err := dialIn(context.Background(), ns, "tcp4", "127.0.0.1:"+strconv.Itoa(p.port), proxyDialTimeout)
	if err != nil {
		return
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.untrack(up)
	defer up.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		// Half-close so that the other direction finishes its answer.
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(up, c)
	go cp(c, up)
	<-done
	<-done
}

// close stops listening, closes every connection and waits for its
// goroutines.
func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
