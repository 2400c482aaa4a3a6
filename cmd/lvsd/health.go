package main

// lvsd health and lvsd reload: the configuration file's side of a running
// lvsd, through the control API.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golvs/internal/api"
	"golvs/internal/apiclient"
)

const healthHelp = `NAME
    lvsd health - the health of the configuration file's real servers

SYNOPSIS
    lvsd health [--socket PATH] [--json]

DESCRIPTION
    Lists every real server of the virtual servers of lvsd's
    keepalived.conf (lvsd -f): whether it is up, in service and with
    which weight, and each of its health checkers with its last result,
    when it last changed and how many checks failed.

OPTIONS
    --socket PATH
        lvsd's control socket. Default: $LVSD_SOCKET, else
        /run/lvsd/lvsd.sock.
    --json
        The API's JSON (GET /v1/health) instead of a table.

EXIT STATUS
    0 listed, 1 lvsd unreachable or without a configuration file, 2 usage.
`

const reloadHelp = `NAME
    lvsd reload - make lvsd read its configuration file again

SYNOPSIS
    lvsd reload [--socket PATH]

DESCRIPTION
    Asks the running lvsd to read its keepalived.conf again and apply
    the difference, as SIGHUP does, and prints the file's warnings. A
    file with errors changes nothing: the errors are printed and the
    exit status is 1.

OPTIONS
    --socket PATH
        lvsd's control socket. Default: $LVSD_SOCKET, else
        /run/lvsd/lvsd.sock.

EXIT STATUS
    0 applied, 1 refused or lvsd unreachable, 2 usage.
`

// clientFlags parses --socket (and --json) for the client subcommands.
func clientFlags(name string, args []string, json *bool) (socket string, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	def := os.Getenv("LVSD_SOCKET")
	if def == "" {
		def = defaultSocket
	}
	fs.StringVar(&socket, "socket", def, "")
	if json != nil {
		fs.BoolVar(json, "json", false, "")
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return socket, nil
}

// clientTimeout bounds a client subcommand's request: a reload parses
// and applies a file, which takes milliseconds even for large ones.
const clientTimeout = 30 * time.Second

func runHealth(args []string, stdout, stderr io.Writer) int {
	var asJSON bool
	socket, err := clientFlags("health", args, &asJSON)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, healthHelp)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "lvsd health: %v\nTry 'lvsd health --help'.\n", err)
		return exitUsage
	}
	c := apiclient.New(socket)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	h, err := c.Health(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "lvsd health: %v\n", err)
		return exitError
	}
	if asJSON {
		writeJSONTo(stdout, h)
		return exitOK
	}
	printHealth(stdout, h, time.Now())
	return exitOK
}

// printHealth prints the health as a table, one line per real server and
// an indented line per checker.
func printHealth(w io.Writer, h []api.RealServerHealth, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSERVER\tSTATE\tWEIGHT\tSINCE\tCHECKS")
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return now.Sub(t).Round(time.Second).String()
	}
	for _, rs := range h {
		state := "down"
		if rs.Up {
			state = "up"
		}
		if rs.Sorry {
			state = "sorry"
			if !rs.InService {
				state = "sorry (standby)"
			}
		} else if rs.Up && !rs.InService {
			state = "up (out of service)"
		} else if !rs.Up && rs.InService {
			state = "down (inhibited)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%d\n", rs.Service, rs.Server, state, rs.EffectiveWeight, rs.Weight, ago(rs.LastChange), len(rs.Checkers))
		for _, c := range rs.Checkers {
			st := "up"
			if !c.Up {
				st = "down"
			}
			res := c.LastResult
			if res == "" {
				res = "not checked yet"
			}
			fmt.Fprintf(tw, "\t  %s\t%s\t%d/%d failed\t%s\t%s\n", c.Kind, st, c.Failures, c.Checks, ago(c.LastChange), res)
		}
	}
	tw.Flush()
}

func runReload(args []string, stdout, stderr io.Writer) int {
	socket, err := clientFlags("reload", args, nil)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, reloadHelp)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "lvsd reload: %v\nTry 'lvsd reload --help'.\n", err)
		return exitUsage
	}
	c := apiclient.New(socket)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	warnings, err := c.Reload(ctx)
	for _, w := range warnings {
		fmt.Fprintln(stderr, w)
	}
	if err != nil {
		msg := err.Error()
		if errors.Is(err, api.ErrBadConfig) {
			msg = strings.ReplaceAll(msg, "; ", "\n")
		}
		fmt.Fprintf(stderr, "lvsd reload: %s\n", msg)
		return exitError
	}
	fmt.Fprintln(stdout, "lvsd reload: configuration applied")
	return exitOK
}

// writeJSONTo writes v as indented JSON.
func writeJSONTo(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
