// Lvsd is the GoLVS daemon. Its first argument names what it does; each
// subcommand lives in its own file beside this one and is listed in
// commands.
package main

import (
	"fmt"
	"io"
	"os"
)

// Exit codes shared by every subcommand.
const (
	exitOK    = 0 // done
	exitError = 1 // a runtime error, printed on stderr
	exitUsage = 2 // bad arguments (as flag and getopt programs do)
)

// command is one subcommand: run gets the arguments after its name.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands is the subcommand table, in the order usage lists it.
var commands = []command{
	{
		name:    "run",
		summary: "run the director (control API, state file, data plane)",
		run:     runDirector,
	},
	{
		name:    "health",
		summary: "list the health of the configuration file's real servers (a running lvsd -f)",
		run:     runHealth,
	},
	{
		name:    "reload",
		summary: "make a running lvsd read its configuration file again (as SIGHUP)",
		run:     runReload,
	},
	{
		name:    "realserver",
		summary: "set this host up as an LVS real server (VIP on lo, ARP sysctls, IP-in-IP decapsulation)",
		run:     runRealserver,
	},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches args[0] and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	case "-f", "--config", "-t", "--config-test":
		// keepalived's command line: lvsd -f FILE, lvsd -t -f FILE.
		return runDirector(args, stdout, stderr)
	case "help":
		if len(args) > 1 {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "lvsd: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: lvsd COMMAND [OPTIONS]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'lvsd COMMAND --help' (or 'lvsd help COMMAND') for a command's manual.\n")
}
