// Ipvsadm is GoLVS's ipvsadm: the command line of ipvsadm 1.31, byte for
// byte (package ipvsadm holds the grammar, the messages and the output
// formats), carried out by lvsd through its control API (package
// apiclient) instead of the kernel's IPVS netlink interface
// (ipvsadm.c, libipvs/libipvs.c).
//
// The daemon's socket is $LVSD_SOCKET, or /run/lvsd/lvsd.sock when unset:
// ipvsadm's grammar has no option for it, so scripts written for the
// kernel's ipvsadm run unchanged, and several directors (in network
// namespaces, say) are told apart by the environment.
//
// Deliberate differences from ipvsadm 1.31: the command line is parsed
// before the daemon is contacted (ipvsadm opens the kernel interface
// first), so -h, -v and usage errors work without a daemon; an unreachable
// daemon is reported with the socket tried ("cannot reach lvsd at ...")
// and exit status 1, as ipvsadm's "Can't initialize ipvs" is.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golvs/internal/apiclient"
	"golvs/internal/control"
	"golvs/internal/ipvsadm"
	"golvs/internal/service"
)

// Exit status when lvsd cannot be reached: ipvsadm's fail(1, "Can't
// initialize ipvs: ...") when the kernel has no IPVS.
const exitUnreachable = 1

// socketEnv names the environment variable that gives lvsd's socket.
const socketEnv = "LVSD_SOCKET"

func main() {
	_, posix := os.LookupEnv("POSIXLY_CORRECT")
	_, posixHarder := os.LookupEnv("POSIX_ME_HARDER")
	e := env{
		socket:         os.Getenv(socketEnv),
		posixlyCorrect: posix || posixHarder,
		stdin:          os.Stdin,
		stdout:         os.Stdout,
		stderr:         os.Stderr,
	}
	os.Exit(run(os.Args, e))
}

// env is what run takes from the process.
type env struct {
	socket         string // $LVSD_SOCKET; "" for the default
	posixlyCorrect bool   // POSIXLY_CORRECT or POSIX_ME_HARDER set (popt)
	stdin          io.Reader
	stdout, stderr io.Writer
	// resolver overrides the host and port naming of listings without
	// -n (tests); nil means the system's.
	resolver ipvsadm.Resolver
}

// run is ipvsadm with argv (argv[0] the program name); it returns the
// exit status.
func run(argv []string, e env) int {
	program := "ipvsadm"
	if len(argv) > 0 {
		program = argv[0]
		argv = argv[1:]
	}
	p := &ipvsadm.Parser{Program: program, PosixlyCorrect: e.posixlyCorrect}
	c, err := p.Parse(argv)
	if err != nil {
		var ue *ipvsadm.UsageError
		if errors.As(err, &ue) {
			fmt.Fprintln(e.stderr, ue.Msg)
			return ue.Code
		}
		fmt.Fprintf(e.stderr, "%s: %v\n", program, err)
		return ipvsadm.ExitUsage
	}
	switch c.Kind {
	case ipvsadm.CmdHelp:
		fmt.Fprint(e.stdout, ipvsadm.HelpText(program))
		return 0
	case ipvsadm.CmdVersion:
		fmt.Fprint(e.stdout, ipvsadm.VersionText)
		return 0
	}

	cl := apiclient.New(e.socket)
	defer cl.Close()
	r := &runner{program: program, cl: cl, env: e}
	ctx := context.Background()
	switch c.Kind {
	case ipvsadm.CmdList, ipvsadm.CmdSave:
		out := bufio.NewWriter(e.stdout)
		err := r.list(ctx, c, out)
		out.Flush()
		return r.report(c, err)
	case ipvsadm.CmdRestore:
		return r.restore(ctx, p)
	}
	return r.report(c, cl.Do(ctx, c))
}

// runner carries out parsed commands through the API.
type runner struct {
	program string
	cl      *apiclient.Client
	env
}

// report prints what ipvsadm prints when c failed with err and returns
// the exit status (0 for no error).
func (r *runner) report(c ipvsadm.Command, err error) int {
	if err == nil {
		return 0
	}
	if code, ok := r.transportFailure(err); ok {
		return code
	}
	text, code := c.Failure(err)
	if text != "" {
		fmt.Fprintln(r.stderr, text)
	}
	return code
}

// transportFailure prints an error that is not the daemon's answer (no
// daemon, a broken connection) and returns ok.
func (r *runner) transportFailure(err error) (int, bool) {
	var ue *apiclient.UnreachableError
	if errors.As(err, &ue) {
		fmt.Fprintf(r.stderr, "%s: %v (is lvsd running? set %s to its socket)\n", r.program, ue, socketEnv)
		return exitUnreachable, true
	}
	if isTransport(err) {
		fmt.Fprintf(r.stderr, "%s: %v\n", r.program, err)
		return exitUnreachable, true
	}
	return 0, false
}

// isTransport reports whether err is no answer of lvsd: not an
// *apiclient.Error, nor the "no such service" of a listing of a service
// the state lacks (ipvsadm.List wraps control.ErrNoService).
func isTransport(err error) bool {
	var ae *apiclient.Error
	return !errors.As(err, &ae) && !errors.Is(err, control.ErrNoService)
}

// list carries out -L (all its forms) and -S, writing to out.
func (r *runner) list(ctx context.Context, c ipvsadm.Command, out io.Writer) error {
	st, err := r.cl.State(ctx, apiclient.StateOptions{Conns: c.List.Connections})
	if err != nil {
		return err
	}
	f := ipvsadm.Formatter{Resolver: r.resolver}
	if !c.List.Numeric && f.Resolver == nil {
		f.Resolver = newSystemResolver()
	}
	if c.Kind == ipvsadm.CmdSave {
		return f.Save(out, st, c.List.Numeric)
	}
	var svc *service.Key
	if c.Options&ipvsadm.OptService != 0 {
		k := c.Service
		svc = &k
	}
	return f.List(out, st, c.List, svc)
}

// reverseTimeout bounds one reverse lookup of a listing without -n.
// ipvsadm waits as long as the system resolver does (seconds per server
// and attempt); a listing should not hang on a dead DNS server, and
// /etc/hosts answers at once.
const reverseTimeout = time.Second

// systemResolver names hosts by reverse lookup (/etc/hosts, then DNS) and
// ports from /etc/services, as gethostbyaddr and getservbyport do for
// ipvsadm. After one lookup times out it stops asking: a dead DNS server
// would otherwise cost a second per address of the listing.
type systemResolver struct {
	ports *ipvsadm.PortTable
	names map[netip.Addr]string // "" for no name
	dead  bool
}

func newSystemResolver() *systemResolver {
	r := &systemResolver{ports: ipvsadm.DefaultPorts(), names: make(map[netip.Addr]string)}
	if f, err := os.Open("/etc/services"); err == nil {
		if t, err := ipvsadm.ParsePorts(f); err == nil {
			r.ports = t
		}
		f.Close()
	}
	return r
}

// Host implements ipvsadm.Resolver.
func (r *systemResolver) Host(a netip.Addr) (string, bool) {
	if name, ok := r.names[a]; ok {
		return name, name != ""
	}
	if r.dead {
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), reverseTimeout)
	defer cancel()
	names, err := net.DefaultResolver.LookupAddr(ctx, a.String())
	name := ""
	switch {
	case err != nil && ctx.Err() != nil:
		r.dead = true
	case err == nil && len(names) > 0:
		name = strings.TrimSuffix(names[0], ".")
	}
	r.names[a] = name
	return name, name != ""
}

// Port implements ipvsadm.Resolver.
func (r *systemResolver) Port(proto uint8, port uint16) (string, bool) {
	return r.ports.Port(proto, port)
}

// restoreBatch is how many -R commands go to lvsd in one request: lvsd
// saves its state once per request, so large batches make a restore of
// thousands of lines cost a few saves; 4096 commands encode to about
// 3 MB, far below the API's body limit. A variable for tests.
var restoreBatch = 4096

// restore carries out -R: the lines of stdin, parsed and reported by
// ipvsadm.Parser.ReadRestore exactly as ipvsadm does, with the changes
// sent to lvsd in batches. Messages are written in the order ipvsadm
// would print them: ReadRestore's own go to a buffer, and each failure of
// a batched command is inserted where ReadRestore would have printed it.
func (r *runner) restore(ctx context.Context, p *ipvsadm.Parser) int {
	rs := &restorer{runner: r, ctx: ctx}
	err := p.ReadRestore(r.stdin, rs.apply, &rs.msgs)
	if rs.fatal == nil {
		rs.flush()
	}
	if rs.fatal != nil {
		rs.emit(rs.fatalAt)
		if code, ok := r.transportFailure(rs.fatal); ok {
			return code
		}
		// lvsd refused a batch as a whole (a bug of one side or the
		// other: the commands were parsed here).
		fmt.Fprintf(r.stderr, "%s: %v\n", r.program, rs.fatal)
		return ipvsadm.ExitKernel
	}
	rs.emit(rs.msgs.Len())
	code := 0
	var ee *ipvsadm.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.Code
	case err != nil:
		// Reading stdin failed.
		fmt.Fprintf(r.stderr, "%s: %v\n", r.program, err)
		return ipvsadm.ExitPopt
	default:
		// ReadRestore saw the last line succeed; if that line was a
		// batched change, its real outcome decides.
		code = rs.lastCode
	}
	if rs.notSaved != nil {
		fmt.Fprintf(r.stderr, "%s: %v\n", r.program, rs.notSaved)
		if code == 0 {
			code = ipvsadm.ExitKernel
		}
	}
	return code
}

// restorer batches the changes of a -R stream.
type restorer struct {
	*runner
	ctx context.Context

	msgs    bytes.Buffer // what ReadRestore prints
	written int          // how much of msgs is on stderr already

	pending []pendingCmd
	// lastCode is the exit status of the last command applied, once
	// known (flush sets it for batched commands; a listing flushes before
	// it runs, so the order holds).
	lastCode int

	fatal    error // lvsd unreachable, or a batch refused as a whole
	fatalAt  int   // position in msgs when fatal happened
	notSaved error // changes applied but not saved
}

type pendingCmd struct {
	c   ipvsadm.Command
	pos int // len(msgs) when ReadRestore handed it over
}

// emit writes ReadRestore's messages up to position pos.
func (rs *restorer) emit(pos int) {
	if pos > rs.written {
		rs.stderr.Write(rs.msgs.Bytes()[rs.written:pos])
		rs.written = pos
	}
}

// errAborted stops ReadRestore (through a failing listing) after a fatal
// error; nothing of it is printed.
var errAborted = errors.New("aborted")

// apply is ReadRestore's callback.
func (rs *restorer) apply(c ipvsadm.Command) error {
	if rs.fatal != nil {
		return errAborted
	}
	switch c.Kind {
	case ipvsadm.CmdHelp, ipvsadm.CmdVersion, ipvsadm.CmdList, ipvsadm.CmdSave:
		// Output to stdout: everything before it must have happened.
		if !rs.flush() {
			return errAborted
		}
		rs.emit(rs.msgs.Len())
		// -h and -v end ipvsadm with status 0; a listing that fails ends
		// the restore with its own status.
		rs.lastCode = 0
		switch c.Kind {
		case ipvsadm.CmdHelp:
			fmt.Fprint(rs.stdout, ipvsadm.HelpText(rs.program))
			return nil
		case ipvsadm.CmdVersion:
			fmt.Fprint(rs.stdout, ipvsadm.VersionText)
			return nil
		}
		out := bufio.NewWriter(rs.stdout)
		err := rs.list(rs.ctx, c, out)
		out.Flush()
		if err != nil && isTransport(err) {
			rs.fatal, rs.fatalAt = err, rs.msgs.Len()
			return errAborted
		}
		return err
	}
	rs.pending = append(rs.pending, pendingCmd{c: c, pos: rs.msgs.Len()})
	if len(rs.pending) >= restoreBatch {
		if !rs.flush() {
			return errAborted
		}
	}
	return nil
}

// flush sends the pending changes and prints their failures where
// ReadRestore would have. It returns false after a fatal error.
func (rs *restorer) flush() bool {
	if rs.fatal != nil {
		return false
	}
	if len(rs.pending) == 0 {
		return true
	}
	cmds := make([]ipvsadm.Command, len(rs.pending))
	for i := range rs.pending {
		cmds[i] = rs.pending[i].c
	}
	results, err := rs.cl.Apply(rs.ctx, cmds)
	if results == nil {
		rs.fatal, rs.fatalAt = err, rs.pending[0].pos
		rs.pending = rs.pending[:0]
		return false
	}
	if err != nil {
		rs.notSaved = err
	}
	for i, pc := range rs.pending {
		if results[i] == nil {
			rs.lastCode = 0
			continue
		}
		rs.emit(pc.pos)
		text, code := pc.c.Failure(results[i])
		if text != "" {
			fmt.Fprintln(rs.stderr, text)
		}
		rs.lastCode = code
	}
	rs.pending = rs.pending[:0]
	return true
}
