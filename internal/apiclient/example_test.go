package apiclient_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"golvs/internal/api"
	"golvs/internal/apiclient"
	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/ipvsadm"
)

// startDirector serves a control API on a Unix socket in a temporary
// directory, as lvsd run does on /run/lvsd/lvsd.sock, and returns the
// socket's path and a function that stops it.
func startDirector() (socket string, stop func()) {
	dir, err := os.MkdirTemp("", "golvs-apiclient-")
	if err != nil {
		panic(err)
	}
	socket = filepath.Join(dir, "lvsd.sock")
	ctl := control.New(control.Config{})
	eng, err := engine.New(engine.Config{Control: ctl, MaxConns: 1024})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: api.New(api.Config{Control: ctl, Engine: eng})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return socket, func() {
		srv.Close()
		<-done
		os.RemoveAll(dir)
	}
}

// The client carries out parsed ipvsadm commands, and a failure prints as
// ipvsadm prints the kernel's.
func Example() {
	socket, stop := startDirector()
	defer stop()

	c := apiclient.New(socket)
	defer c.Close()
	ctx := context.Background()

	for _, argv := range [][]string{
		{"-A", "-t", "198.18.0.1:80", "-s", "rr"},
		{"-a", "-t", "198.18.0.1:80", "-r", "198.19.0.1", "-m", "-w", "2"},
		{"-a", "-t", "198.18.0.1:80", "-r", "198.19.0.1", "-m"},
	} {
		cmd, err := ipvsadm.Parse(argv)
		if err != nil {
			panic(err)
		}
		if err := c.Do(ctx, cmd); err != nil {
			text, code := cmd.Failure(err)
			fmt.Printf("%s (exit %d)\n", text, code)
		}
	}

	st, err := c.State(ctx, apiclient.StateOptions{})
	if err != nil {
		panic(err)
	}
	ipvsadm.List(os.Stdout, st, ipvsadm.ListOptions{Numeric: true}, nil)
	// Output:
	// Destination already exists (exit 255)
	// IP Virtual Server version 1.2.1 (size=4096)
	// Prot LocalAddress:Port Scheduler Flags
	//   -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
	// TCP  198.18.0.1:80 rr
	//   -> 198.19.0.1:80                Masq    2      0          0
}
