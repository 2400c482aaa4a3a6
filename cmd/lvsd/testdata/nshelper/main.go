// Nshelper is the namespace tests' server and load generator, built by the
// tests (go build ./testdata/nshelper) and run in the real servers' and the
// client's namespaces with ip netns exec.
//
//	nshelper serve -name NAME -tcp 80,8080 -udp 53
//
// serves HTTP on every TCP port (all addresses, both families), with a new
// connection per request (Connection: close):
//
//	GET  /           "NAME PORT\n"
//	GET  /ka         "NAME PORT\n", the connection kept open
//	GET  /who        "NAME PORT CLIENT-ADDRESS\n"
//	GET  /blob?n=N   N bytes of the deterministic stream Blob
//	POST /sink       reads the body, answers "LENGTH SHA256-HEX\n"
//
// a UDP echo on every UDP port that answers "NAME " and the datagram, and
// with -echo PORTS a TCP line echo that answers each line with "NAME line".
// It prints "ready" once every socket listens, and runs until killed.
//
//	nshelper load -url URL -c CONNS -d DURATION [-keepalive]
//
// requests URL from CONNS concurrent clients for DURATION, each request on
// a new connection unless -keepalive, and prints one line:
// "requests=N errors=N rps=N p50_us=N p99_us=N".
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nshelper serve|load ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "load":
		load(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "nshelper: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

// Blob returns the deterministic stream /blob serves (and the tests
// compute on their side): ChaCha8 with a fixed seed.
func Blob() io.Reader { return rand.NewChaCha8([32]byte{'g', 'o', 'l', 'v', 's'}) }

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	name := fs.String("name", "", "the name every answer starts with")
	tcp := fs.String("tcp", "80", "comma-separated HTTP ports")
	udp := fs.String("udp", "", "comma-separated UDP echo ports")
	echo := fs.String("echo", "", "comma-separated TCP line-echo ports")
	fs.Parse(args)
	for _, p := range ports(*echo) {
		ln, err := net.Listen("tcp", ":"+p)
		if err != nil {
			fail(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				// Each line comes back as "NAME line": long-lived
				// connections for the failover tests.
				go func() {
					defer c.Close()
					r := bufio.NewReader(c)
					for {
						line, err := r.ReadString('\n')
						if err != nil {
							return
						}
						if _, err := io.WriteString(c, *name+" "+line); err != nil {
							return
						}
					}
				}()
			}
		}()
	}
	for _, p := range ports(*tcp) {
		ln, err := net.Listen("tcp", ":"+p)
		if err != nil {
			fail(err)
		}
		port := p
		mux := http.NewServeMux()
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			fmt.Fprintf(w, "%s %s\n", *name, port)
		})
		mux.HandleFunc("GET /ka", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s\n", *name, port)
		})
		mux.HandleFunc("GET /who", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			fmt.Fprintf(w, "%s %s %s\n", *name, port, r.RemoteAddr)
		})
		mux.HandleFunc("GET /blob", func(w http.ResponseWriter, r *http.Request) {
			n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
			if err != nil || n < 0 {
				http.Error(w, "bad n", http.StatusBadRequest)
				return
			}
			w.Header().Set("Connection", "close")
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			io.CopyN(w, Blob(), n)
		})
		mux.HandleFunc("POST /sink", func(w http.ResponseWriter, r *http.Request) {
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("Connection", "close")
			fmt.Fprintf(w, "%d %s\n", n, hex.EncodeToString(h.Sum(nil)))
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
	}
	for _, p := range ports(*udp) {
		// One socket per family, answering from the address each
		// datagram came to (a DR or TUN server's VIP on lo, not the
		// address the route to the client would pick).
		pc4, err := net.ListenPacket("udp4", ":"+p)
		if err != nil {
			fail(err)
		}
		c4 := ipv4.NewPacketConn(pc4)
		if err := c4.SetControlMessage(ipv4.FlagDst, true); err != nil {
			fail(err)
		}
		go func() {
			buf := make([]byte, 65536)
			for {
				n, cm, from, err := c4.ReadFrom(buf)
				if err != nil {
					return
				}
				var src *ipv4.ControlMessage
				if cm != nil {
					src = &ipv4.ControlMessage{Src: cm.Dst}
				}
				c4.WriteTo(append([]byte(*name+" "), buf[:n]...), src, from)
			}
		}()
		pc6, err := net.ListenPacket("udp6", ":"+p)
		if err != nil {
			fail(err)
		}
		c6 := ipv6.NewPacketConn(pc6)
		if err := c6.SetControlMessage(ipv6.FlagDst, true); err != nil {
			fail(err)
		}
		go func() {
			buf := make([]byte, 65536)
			for {
				n, cm, from, err := c6.ReadFrom(buf)
				if err != nil {
					return
				}
				var src *ipv6.ControlMessage
				if cm != nil {
					src = &ipv6.ControlMessage{Src: cm.Dst}
				}
				c6.WriteTo(append([]byte(*name+" "), buf[:n]...), src, from)
			}
		}()
	}
	fmt.Println("ready")
	select {}
}

func load(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	url := fs.String("url", "", "the URL to request")
	conns := fs.Int("c", 8, "concurrent clients")
	dur := fs.Duration("d", 3*time.Second, "how long")
	keep := fs.Bool("keepalive", false, "reuse connections")
	fs.Parse(args)
	tr := &http.Transport{DisableKeepAlives: !*keep, MaxIdleConnsPerHost: *conns,
		DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext}
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var (
		mu   sync.Mutex
		lats []time.Duration
		errs int
	)
	end := time.Now().Add(*dur)
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			for time.Now().Before(end) {
				t0 := time.Now()
				resp, err := cl.Get(*url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(lats)
	pct := func(p float64) int64 {
		if len(lats) == 0 {
			return 0
		}
		return lats[int(float64(len(lats)-1)*p)].Microseconds()
	}
	fmt.Printf("requests=%d errors=%d rps=%.0f p50_us=%d p99_us=%d\n",
		len(lats), errs, float64(len(lats))/dur.Seconds(), pct(0.5), pct(0.99))
}

func ports(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "nshelper:", err)
	os.Exit(1)
}
