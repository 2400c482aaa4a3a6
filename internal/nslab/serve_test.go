package nslab

import (
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// freePort returns a port free on 127.0.0.1 for network (tcp4 or udp4)
// at the time of the call.
func freePort(t *testing.T, network string) uint16 {
	t.Helper()
	if network == "tcp4" {
		ln, err := net.Listen(network, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return uint16(ln.Addr().(*net.TCPAddr).Port)
	}
	pc, err := net.ListenPacket(network, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return uint16(pc.LocalAddr().(*net.UDPAddr).Port)
}

// TestServe: a real server answers its name over HTTP and echoes
// datagrams after its name, and stops with its context, leaving no
// goroutine.
func TestServe(t *testing.T) {
	before := runtime.NumGoroutine()
	tp, up := freePort(t, "tcp4"), freePort(t, "udp4")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- serveOn(ctx, "127.0.0.1", "rs7", []uint16{tp}, []uint16{up}, pw)
		pw.Close()
	}()
	line := make([]byte, 64)
	n, _ := pr.Read(line)
	if got := strings.TrimSpace(string(line[:n])); got != ServeReady {
		t.Fatalf("first line %q, want %q", got, ServeReady)
	}
	go io.Copy(io.Discard, pr)

	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + net.JoinHostPort("127.0.0.1", itoa(tp)) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "rs7\n" || resp.StatusCode != 200 {
		t.Errorf("GET /: %d %q, want 200 \"rs7\\n\"", resp.StatusCode, body)
	}

	c, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", itoa(up)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("ping 1"))
	buf := make([]byte, 100)
	n, err = c.Read(buf)
	if err != nil || string(buf[:n]) != "rs7 ping 1" {
		t.Errorf("echo: %q %v, want \"rs7 ping 1\"", buf[:n], err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	waitGoroutines(t, before)
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// waitGoroutines waits (bounded) until no more goroutines run than
// before.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
