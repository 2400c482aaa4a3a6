package nslab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
)

// ServeReady is the line Serve prints once every socket listens.
const ServeReady = "ready"

// Serve runs a real server's services until ctx ends (the lab runs it as
// `lvslab serve` in each real server's namespace): HTTP on every TCP
// port, on all addresses, answering "NAME\n" to GET / (Connection:
// close), and a UDP echo on every UDP port answering "NAME " and the
// datagram, from the address the datagram came to (a DR or TUN server's
// VIP, not the address the route to the client would pick). It writes
// ServeReady to ready once everything listens. (A copy of
// cmd/lvsd/testdata/nshelper's serve, reduced to what the lab needs, so
// that the lab is one binary.)
func Serve(ctx context.Context, name string, tcpPorts, udpPorts []uint16, ready io.Writer) error {
	return serveOn(ctx, "", name, tcpPorts, udpPorts, ready)
}

// serveOn is Serve on one address (host; "" for all).
func serveOn(ctx context.Context, host, name string, tcpPorts, udpPorts []uint16, ready io.Writer) error {
	var (
		wg      sync.WaitGroup
		closers []io.Closer
	)
	defer func() {
		for _, c := range closers {
			c.Close()
		}
		wg.Wait()
	}()
	for _, port := range tcpPorts {
		ln, err := net.Listen("tcp4", net.JoinHostPort(host, strconv.Itoa(int(port))))
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			fmt.Fprintf(w, "%s\n", name)
		})
		// Header and idle timeouts: a client that goes silent holds
		// nothing for long (10 s is far above the lab's requests).
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second}
		closers = append(closers, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv.Serve(ln)
		}()
	}
	for _, port := range udpPorts {
		pc, err := net.ListenPacket("udp4", net.JoinHostPort(host, strconv.Itoa(int(port))))
		if err != nil {
			return err
		}
		closers = append(closers, pc)
		c := ipv4.NewPacketConn(pc)
		if err := c.SetControlMessage(ipv4.FlagDst, true); err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 65536)
			for {
				n, cm, from, err := c.ReadFrom(buf)
				if errors.Is(err, net.ErrClosed) {
					return
				}
				if err != nil {
					continue
				}
				var src *ipv4.ControlMessage
				if cm != nil {
					src = &ipv4.ControlMessage{Src: cm.Dst}
				}
				c.WriteTo(append([]byte(name+" "), buf[:n]...), src, from)
			}
		}()
	}
	fmt.Fprintln(ready, ServeReady)
	<-ctx.Done()
	return nil
}
