package ipvsadm

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"golvs/internal/control"
)

// TestFailure checks ipvs_strerror per command (libipvs.c's table) and
// ipvsadm's exit paths.
func TestFailure(t *testing.T) {
	svc := OptService
	for _, tc := range []struct {
		kind Kind
		opts Option
		err  error
		text string
		code int
	}{
		{CmdAddService, svc, control.ErrServiceExists, "Service already exists", 255},
		{CmdAddService, svc, control.ErrSchedNotFound, "Scheduler or persistence engine not found", 255},
		{CmdEditService, svc, control.ErrSchedNotFound, "Scheduler or persistence engine not found", 255},
		{CmdEditService, svc, control.ErrNoService, "No such service", 255},
		{CmdDeleteService, svc, control.ErrNoService, "No such service", 255},
		{CmdZero, svc, control.ErrNoService, "No such service", 255},
		// ESRCH on destination operations reads "Service not defined",
		// whichever sentinel the daemon chose.
		{CmdAddServer, svc, control.ErrServiceUndef, "Service not defined", 255},
		{CmdAddServer, svc, control.ErrNoService, "Service not defined", 255},
		{CmdEditServer, svc, control.ErrServiceUndef, "Service not defined", 255},
		{CmdDeleteServer, svc, control.ErrServiceUndef, "Service not defined", 255},
		{CmdAddServer, svc, control.ErrDestExists, "Destination already exists", 255},
		{CmdEditServer, svc, control.ErrNoDest, "No such destination", 255},
		{CmdDeleteServer, svc, control.ErrNoDest, "No such destination", 255},
		// ENOENT has no entry for add_dest: strerror.
		{CmdAddServer, svc, control.ErrNoDest, "No such file or directory", 255},
		{CmdAddServer, svc, control.ErrRange, "Numerical result out of range", 255},
		{CmdEditServer, svc, fmt.Errorf("weight -1: %w", control.ErrRange), "Numerical result out of range", 255},
		{CmdAddServer, svc, fmt.Errorf("destination 224.0.0.1: %w", control.ErrInvalid), "Invalid operation.  Possibly wrong module version, address not unicast, ...", 255},
		{CmdAddServer, svc, control.ErrAFNoSupport, "Operation not supported with specified address family", 255},
		{CmdAddServer, svc, control.ErrTooManyDests, "Memory allocation problem", 255},
		{CmdAddService, svc, control.ErrDestExists, "Service already exists", 255}, // EEXIST on add_service
		{CmdEditService, svc, control.ErrServiceExists, "File exists", 255},
		{CmdStartDaemon, 0, syscall.EEXIST, "Daemon has already run", 255},
		{CmdStopDaemon, 0, syscall.ESRCH, "No daemon is running", 255},
		{CmdStartDaemon, 0, syscall.EPERM, "Permission denied (you must be root)", 255},
		{CmdSetTimeouts, 0, syscall.EINVAL, "Invalid operation.  Possibly wrong module version, address not unicast, ...", 255},
		{CmdSetTimeouts, 0, syscall.Errno(200), "Unknown error 200", 255},
		{CmdFlush, 0, syscall.ENOMEM, "Memory allocation problem", 255},
		{CmdList, svc, control.ErrNoService, "No such service", 1},
		{CmdList, OptNumeric, syscall.ENOMEM, "Memory allocation problem", 1},
		{CmdList, OptTimeout, syscall.EPERM, "", 1},
		{CmdList, OptDaemon, syscall.EPERM, "", 1},
		{CmdList, OptConnection, syscall.ENOENT, "cannot open file /proc/net/ip_vs_conn", 1},
		{CmdSave, OptNumeric, syscall.EPERM, "Permission denied (you must be root)", 1},
		{CmdAddService, svc, errors.New("lvsd: connection refused"), "lvsd: connection refused", 255},
	} {
		c := Command{Kind: tc.kind, Options: tc.opts}
		text, code := c.Failure(tc.err)
		if text != tc.text || code != tc.code {
			t.Errorf("%v%s: Failure(%v) = %q, %d; want %q, %d", tc.kind, optSuffix(tc.opts), tc.err, text, code, tc.text, tc.code)
		}
	}
}

func optSuffix(o Option) string {
	if o == 0 {
		return ""
	}
	return " (" + o.String() + ")"
}

func TestMessage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		text string
	}{
		{control.ErrServiceExists, "Service already exists"},
		{control.ErrServiceUndef, "Service not defined"},
		{fmt.Errorf("x: %w", control.ErrNoDest), "No such destination"},
		{fmt.Errorf("protocol 1: %w", control.ErrInvalid), "Invalid operation.  Possibly wrong module version, address not unicast, ..."},
		{syscall.ERANGE, "Numerical result out of range"},
		{syscall.EAFNOSUPPORT, "Operation not supported with specified address family"},
		{errors.New("other"), "other"},
	} {
		text, code := Message(tc.err)
		if text != tc.text || code != ExitKernel {
			t.Errorf("Message(%v) = %q, %d; want %q, %d", tc.err, text, code, tc.text, ExitKernel)
		}
	}
}

func TestErrorTypes(t *testing.T) {
	var err error = &UsageError{Msg: "illegal weight specified", Code: ExitUsage}
	var ue *UsageError
	if !errors.As(err, &ue) || ue.Error() != "illegal weight specified" {
		t.Errorf("UsageError: %v", err)
	}
	if got := (&ExitError{Code: 255}).Error(); got != "exit status 255" {
		t.Errorf("ExitError text %q", got)
	}
	if Kind(99).String() != "Kind(99)" || CmdSetTimeouts.String() != "set" || CmdEditServer.String() != "edit-server" {
		t.Errorf("Kind names: %v %v %v", Kind(99), CmdSetTimeouts, CmdEditServer)
	}
	if got := (OptService | OptTunRemCsum).String(); got != "service-address,tun-remcsum" {
		t.Errorf("Option names: %q", got)
	}
}
