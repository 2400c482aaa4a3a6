//go:build !linux

package realserver

import "errors"

// errNotLinux: a real server's set-up is Linux's sysctls, rtnetlink and
// TUN devices.
var errNotLinux = errors.New("realserver: only supported on Linux")

// Result is what Setup found out about tunnels (see the Linux version).
type Result struct{ Kernel, User Encaps }

// Setup is not supported outside Linux.
func Setup(Config) (Result, error) { return Result{}, errNotLinux }

// Teardown is not supported outside Linux.
func Teardown(Config) error { return errNotLinux }

// Status is not supported outside Linux.
func Status(Config) (*Report, error) { return nil, errNotLinux }

// Decap is not supported outside Linux.
type Decap struct{}

// OpenDecap is not supported outside Linux.
func OpenDecap(DecapConfig) (*Decap, error) { return nil, errNotLinux }

// Name is not supported outside Linux.
func (*Decap) Name() string { return "" }

// Encaps is not supported outside Linux.
func (*Decap) Encaps() Encaps { return 0 }

// Counters is not supported outside Linux.
func (*Decap) Counters() DecapCounters { return DecapCounters{} }

// Run is not supported outside Linux.
func (*Decap) Run() error { return errNotLinux }

// Close is not supported outside Linux.
func (*Decap) Close() error { return nil }
