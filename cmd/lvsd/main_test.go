package main

import (
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
)

func TestDispatch(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string // substring, "" for empty
		stderr     string
		noStdout   bool
		noStderrOK bool
	}{
		{name: "no command", args: nil, code: exitUsage, stderr: "Usage: lvsd COMMAND", noStdout: true},
		{name: "unknown", args: []string{"frobnicate"}, code: exitUsage, stderr: `unknown command "frobnicate"`, noStdout: true},
		{name: "unknown flag as command", args: []string{"--vip"}, code: exitUsage, stderr: `unknown command "--vip"`},
		{name: "help", args: []string{"--help"}, code: exitOK, stdout: "realserver   set this host up"},
		{name: "-h", args: []string{"-h"}, code: exitOK, stdout: "Commands:"},
		{name: "help command", args: []string{"help", "realserver"}, code: exitOK, stdout: "lvsd realserver - set this host up"},
		{name: "help alone", args: []string{"help"}, code: exitOK, stdout: "Commands:"},
		{name: "realserver help", args: []string{"realserver", "--help"}, code: exitOK, stdout: "EXIT STATUS"},
		{name: "realserver -h", args: []string{"realserver", "-h"}, code: exitOK, stdout: "SYNOPSIS"},
		{name: "realserver no vip", args: []string{"realserver"}, code: exitUsage, stderr: "--vip is required"},
		{name: "realserver bad vip", args: []string{"realserver", "--vip", "198.18.100.1/24"}, code: exitUsage, stderr: "a VIP is one address: /32"},
		{name: "realserver not an address", args: []string{"realserver", "--vip", "vip1"}, code: exitUsage, stderr: `"vip1": not an IP address`},
		{name: "realserver unknown flag", args: []string{"realserver", "--vip", "198.18.100.1", "--nope"}, code: exitUsage, stderr: "flag provided but not defined: -nope"},
		{name: "realserver stray argument", args: []string{"realserver", "--vip", "198.18.100.1", "start"}, code: exitUsage, stderr: `unexpected argument "start"`},
		{name: "realserver down and status", args: []string{"realserver", "--down", "--status"}, code: exitUsage, stderr: "exclude each other"},
		{name: "realserver bad tun-dev", args: []string{"realserver", "--vip", "198.18.100.1", "--tun-dev", "much-too-long-name"}, code: exitUsage, stderr: "--tun-dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := run(tt.args, &out, &errOut)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out.String(), errOut.String())
			}
			if tt.stdout != "" && !strings.Contains(out.String(), tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, out.String())
			}
			if tt.stderr != "" && !strings.Contains(errOut.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, errOut.String())
			}
			if tt.noStdout && out.Len() != 0 {
				t.Errorf("stdout not empty: %s", out.String())
			}
			if tt.code == exitUsage && strings.HasPrefix(strings.Join(tt.args, " "), "realserver") &&
				!strings.Contains(errOut.String(), "Try 'lvsd realserver --help'") {
				t.Errorf("usage error without the hint:\n%s", errOut.String())
			}
		})
	}
}

func TestParseRealserver(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		vips     []string
		tun      bool
		down     bool
		status   bool
		tunDev   string
		stateDir string
		wantErr  string
	}{
		{name: "one vip", args: []string{"--vip", "198.18.100.1"}, vips: []string{"198.18.100.1"}},
		{name: "list", args: []string{"--vip=198.18.100.1,2001:db8::100", "--tun"}, vips: []string{"198.18.100.1", "2001:db8::100"}, tun: true},
		{name: "repeated", args: []string{"--vip", "198.18.100.1", "--vip", "2001:db8::100"}, vips: []string{"198.18.100.1", "2001:db8::100"}},
		{name: "single dash", args: []string{"-vip", "198.18.100.1", "-tun"}, vips: []string{"198.18.100.1"}, tun: true},
		{name: "down alone", args: []string{"--down"}, down: true},
		{name: "down with vip and tun", args: []string{"--down", "--vip", "198.18.100.1", "--tun"}, vips: []string{"198.18.100.1"}, down: true, tun: true},
		{name: "status", args: []string{"--status", "--state-dir", "/tmp/x"}, status: true, stateDir: "/tmp/x"},
		{name: "tun dev", args: []string{"--vip", "198.18.100.1", "--tun", "--tun-dev", "rs-tun"}, vips: []string{"198.18.100.1"}, tun: true, tunDev: "rs-tun"},
		{name: "repeated duplicate", args: []string{"--vip", "198.18.100.1", "--vip", "198.18.100.1"}, wantErr: "given twice"},
		{name: "empty state dir", args: []string{"--vip", "198.18.100.1", "--state-dir", ""}, wantErr: "--state-dir is empty"},
		{name: "missing value", args: []string{"--vip"}, wantErr: "flag needs an argument"},
		{name: "bool with value", args: []string{"--tun=maybe", "--vip", "198.18.100.1"}, wantErr: "invalid boolean value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseRealserver(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errUsage) {
					t.Fatalf("err = %v, want a usage error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var vips []string
			for _, a := range o.vips {
				vips = append(vips, a.String())
			}
			if !slices.Equal(vips, tt.vips) || o.tun != tt.tun || o.down != tt.down || o.status != tt.status {
				t.Errorf("got %+v", o)
			}
			wantDev, wantDir := tt.tunDev, tt.stateDir
			if wantDev == "" {
				wantDev = "lvstun0"
			}
			if wantDir == "" {
				wantDir = "/run/lvsd"
			}
			if o.tunDev != wantDev || o.stateDir != wantDir {
				t.Errorf("tun-dev %q state-dir %q, want %q %q", o.tunDev, o.stateDir, wantDev, wantDir)
			}
		})
	}
	if _, err := parseRealserver([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v, want flag.ErrHelp", err)
	}
}

// The manual names every option the parser knows.
func TestRealserverHelpCoversFlags(t *testing.T) {
	for _, f := range []string{"--vip", "--tun", "--down", "--status", "--tun-dev", "--state-dir", "-h, --help"} {
		if !strings.Contains(realserverHelp, "\n    "+f) {
			t.Errorf("help does not document %s", f)
		}
	}
	for _, line := range strings.Split(realserverHelp, "\n") {
		if len(line) > 80 {
			t.Errorf("help line over 80 columns: %q", line)
		}
	}
}
