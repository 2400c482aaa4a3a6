package ipvsadm

import (
	"errors"
	"strconv"
	"syscall"

	"golvs/internal/control"
)

// Exit codes of ipvsadm 1.31.
const (
	// ExitUsage is the status of fail(2, ...): an error ipvsadm finds in
	// its own parsing of the command line.
	ExitUsage = 2
	// ExitPopt is the status of popt errors and of tryhelp_exit: ipvsadm
	// returns or exits with -1, which the shell sees as 255. Kernel errors
	// of commands that change the table end the same way (process_options
	// returns the -1 of libipvs).
	ExitPopt = 255
	// ExitKernel is the status after a failed kernel operation of a
	// command that changes the table (-A, -E, -D, -a, -e, -d, -Z, --set,
	// --start-daemon, ...): process_options returns libipvs' -1.
	ExitKernel = 255
	// ExitList is the status after a failed listing (-L, -S): the list
	// functions call exit(1).
	ExitList = 1
)

// UsageError is a command line that ipvsadm rejects: Msg is the text it
// prints on stderr (without the final newline that fail() and popt's
// error printing add) and Code its exit status.
type UsageError struct {
	Msg  string
	Code int
	// NonFatal is set for popt's errors after the command option ("-Q:
	// unknown option", "-t: missing argument"): ipvsadm reports them by
	// returning -1 from process_options instead of exiting, so -R prints
	// them and goes on with the next line. Every other UsageError ends
	// ipvsadm, even inside -R.
	NonFatal bool
}

func (e *UsageError) Error() string { return e.Msg }

// ExitError tells the caller of ReadRestore with which status ipvsadm
// would exit; whatever it had to print is already written.
type ExitError struct {
	Code int
}

func (e *ExitError) Error() string { return "exit status " + strconv.Itoa(e.Code) }

// usageErr is fail(2, msg).
func usageErr(msg string) *UsageError { return &UsageError{Msg: msg, Code: ExitUsage} }

// tryHelp is tryhelp_exit(program, -1).
func tryHelp(program string) *UsageError {
	return &UsageError{
		Msg:  "Try `" + program + " -h' or '" + program + " --help' for more information.",
		Code: ExitPopt,
	}
}

// libipvs functions, the first key of ipvs_strerror's table (libipvs.c
// sets ipvs_func to the function that failed).
type ipvsFunc uint8

const (
	fnNone ipvsFunc = iota
	fnAddService
	fnUpdateService
	fnDelService
	fnZeroService
	fnAddDest
	fnUpdateDest
	fnDelDest
	fnStartDaemon
	fnStopDaemon
	fnGetServices
	fnGetDests
	fnGetService
)

// strerrorTable is ipvs_strerror's table (libipvs/libipvs.c, ipvsadm
// 1.31), searched in order: the first entry whose function is fnNone or
// the failed function and whose errno matches gives the message.
var strerrorTable = []struct {
	fn    ipvsFunc
	errno syscall.Errno
	msg   string
}{
	{fnAddService, syscall.EEXIST, "Service already exists"},
	{fnAddService, syscall.ENOENT, "Scheduler or persistence engine not found"},
	{fnUpdateService, syscall.ESRCH, "No such service"},
	{fnUpdateService, syscall.ENOENT, "Scheduler or persistence engine not found"},
	{fnDelService, syscall.ESRCH, "No such service"},
	{fnZeroService, syscall.ESRCH, "No such service"},
	{fnAddDest, syscall.ESRCH, "Service not defined"},
	{fnAddDest, syscall.EEXIST, "Destination already exists"},
	{fnUpdateDest, syscall.ESRCH, "Service not defined"},
	{fnUpdateDest, syscall.ENOENT, "No such destination"},
	{fnDelDest, syscall.ESRCH, "Service not defined"},
	{fnDelDest, syscall.ENOENT, "No such destination"},
	{fnStartDaemon, syscall.EEXIST, "Daemon has already run"},
	{fnStopDaemon, syscall.ESRCH, "No daemon is running"},
	{fnGetServices, syscall.ESRCH, "No such service"},
	{fnGetDests, syscall.ESRCH, "No such service"},
	{fnGetService, syscall.ESRCH, "No such service"},
	{fnNone, syscall.EPERM, "Permission denied (you must be root)"},
	{fnNone, syscall.EINVAL, "Invalid operation.  Possibly wrong module version, address not unicast, ..."},
	{fnNone, syscall.ENOPROTOOPT, "Protocol not available"},
	{fnNone, syscall.ENOMEM, "Memory allocation problem"},
	{fnNone, syscall.EOPNOTSUPP, "Operation not supported with IPv6"},
	{fnNone, syscall.EAFNOSUPPORT, "Operation not supported with specified address family"},
	{fnNone, syscall.EMSGSIZE, "Module is wrong version"},
}

// glibcStrerror holds glibc's strerror texts for the errnos the kernel's
// IPVS code returns that ipvs_strerror's table does not name (Go's
// syscall texts are lower-case and differ).
var glibcStrerror = map[syscall.Errno]string{
	syscall.EPERM:        "Operation not permitted",
	syscall.ENOENT:       "No such file or directory",
	syscall.ESRCH:        "No such process",
	syscall.EAGAIN:       "Resource temporarily unavailable",
	syscall.ENOMEM:       "Cannot allocate memory",
	syscall.EACCES:       "Permission denied",
	syscall.EBUSY:        "Device or resource busy",
	syscall.EEXIST:       "File exists",
	syscall.ENODEV:       "No such device",
	syscall.EINVAL:       "Invalid argument",
	syscall.ENOSPC:       "No space left on device",
	syscall.ERANGE:       "Numerical result out of range",
	syscall.EMSGSIZE:     "Message too long",
	syscall.ENOPROTOOPT:  "Protocol not available",
	syscall.EOPNOTSUPP:   "Operation not supported",
	syscall.EAFNOSUPPORT: "Address family not supported by protocol",
	syscall.EADDRINUSE:   "Address already in use",
	syscall.ENOBUFS:      "No buffer space available",
}

func strerror(e syscall.Errno) string {
	if s, ok := glibcStrerror[e]; ok {
		return s
	}
	return "Unknown error " + strconv.Itoa(int(e))
}

// ipvsStrerror is libipvs' ipvs_strerror(errno) after fn failed.
func ipvsStrerror(fn ipvsFunc, e syscall.Errno) string {
	for _, t := range strerrorTable {
		if (t.fn == fnNone || t.fn == fn) && t.errno == e {
			return t.msg
		}
	}
	return strerror(e)
}

// sentinelErrno maps the control package's failure classes to the errno
// the kernel returns for them (see the comments of the sentinels).
var sentinelErrno = []struct {
	err   error
	errno syscall.Errno
}{
	{control.ErrServiceExists, syscall.EEXIST},
	{control.ErrSchedNotFound, syscall.ENOENT},
	{control.ErrNoService, syscall.ESRCH},
	{control.ErrServiceUndef, syscall.ESRCH},
	{control.ErrDestExists, syscall.EEXIST},
	{control.ErrNoDest, syscall.ENOENT},
	{control.ErrRange, syscall.ERANGE},
	{control.ErrAFNoSupport, syscall.EAFNOSUPPORT},
	{control.ErrInvalid, syscall.EINVAL},
	{control.ErrTooManyDests, syscall.ENOMEM},
}

// errnoOf returns the kernel errno that err stands for: a control
// sentinel, or a syscall.Errno (the sync daemon's "already running" is
// syscall.EEXIST, "not running" syscall.ESRCH, as in the kernel).
func errnoOf(err error) (syscall.Errno, bool) {
	for _, s := range sentinelErrno {
		if errors.Is(err, s.err) {
			return s.errno, true
		}
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e, true
	}
	return 0, false
}

// Message is what ipvsadm prints when a kernel operation fails with err,
// and its exit status, without knowing the command: a control sentinel
// gives its own text (the kernel message of its natural operation), a
// syscall.Errno the command-independent part of ipvs_strerror's table or
// glibc's strerror; anything else its Error text. The status is 255
// (ExitKernel). Command.Failure is exact per command; prefer it.
func Message(err error) (text string, code int) {
	for _, s := range sentinelErrno {
		if errors.Is(err, s.err) {
			return s.err.Error(), ExitKernel
		}
	}
	if e, ok := errnoOf(err); ok {
		return ipvsStrerror(fnNone, e), ExitKernel
	}
	return err.Error(), ExitKernel
}

// Failure is what ipvsadm prints on stderr when the daemon fails to carry
// out c with err, and its exit status (ipvs_strerror keyed by the libipvs
// function c calls, ipvsadm.c's exit paths):
//
//   - -A/-E/-D/-Z/-a/-e/-d/--set/--start-daemon/--stop-daemon/-C: the
//     message, status 255 (process_options returns -1);
//   - -L of one service, of all services and -S: the message, status 1
//     (list_service and list_all exit(1));
//   - -L --timeout and -L --daemon: no message, status 1 (list_timeout
//     and list_daemon exit(1) silently);
//   - -L -c: ipvsadm reads /proc/net/ip_vs_conn; a failure prints
//     "cannot open file /proc/net/ip_vs_conn", status 1.
//
// An error that is no kernel failure class (a control sentinel or a
// syscall.Errno) prints its own text, status 255 (1 for listings).
func (c Command) Failure(err error) (text string, code int) {
	fn, code := fnNone, ExitKernel
	switch c.Kind {
	case CmdAddService:
		fn = fnAddService
	case CmdEditService:
		fn = fnUpdateService
	case CmdDeleteService:
		fn = fnDelService
	case CmdZero:
		fn = fnZeroService
	case CmdAddServer:
		fn = fnAddDest
	case CmdEditServer:
		fn = fnUpdateDest
	case CmdDeleteServer:
		fn = fnDelDest
	case CmdStartDaemon:
		fn = fnStartDaemon
	case CmdStopDaemon:
		fn = fnStopDaemon
	case CmdSave:
		fn, code = fnGetServices, ExitList
	case CmdList:
		code = ExitList
		switch {
		case c.Options&OptConnection != 0:
			return "cannot open file /proc/net/ip_vs_conn", ExitList
		case c.Options&OptService != 0:
			fn = fnGetService
		case c.Options&(OptTimeout|OptDaemon) != 0:
			return "", ExitList
		default:
			fn = fnGetServices
		}
	}
	e, ok := errnoOf(err)
	if !ok {
		return err.Error(), code
	}
	return ipvsStrerror(fn, e), code
}
