package api

import (
	"errors"
	"net/http"
	"syscall"

	"golvs/internal/control"
	"golvs/internal/proto"
)

// Errors of the API itself (the other classes are control's sentinels and
// the sync daemon's errnos).
var (
	// ErrBadRequest: the request is not understood (malformed JSON,
	// unknown fields, a malformed service or destination in the path, a
	// command that is not a change).
	ErrBadRequest = errors.New("bad request")
	// ErrNotSaved: the change was applied but the state file could not be
	// written; it will be lost at the next restart unless a later change
	// saves.
	ErrNotSaved = errors.New("change applied, but the state file was not saved")
	// ErrInternal: a bug in lvsd (a handler panicked).
	ErrInternal = errors.New("internal error")
	// ErrBadConfig: a reload found the configuration file bad; the
	// running configuration is unchanged.
	ErrBadConfig = errors.New("configuration refused")
	// ErrNoConfig: the daemon runs without a configuration file, so
	// there is nothing to reload and no health checker.
	ErrNoConfig = errors.New("lvsd runs without a configuration file (-f)")
)

// Error classes: stable names of the failure classes on the wire.
const (
	ClassServiceExists = "service_exists"  // control.ErrServiceExists
	ClassSchedNotFound = "sched_not_found" // control.ErrSchedNotFound
	ClassNoService     = "no_service"      // control.ErrNoService
	ClassServiceUndef  = "service_undef"   // control.ErrServiceUndef
	ClassDestExists    = "dest_exists"     // control.ErrDestExists
	ClassNoDest        = "no_dest"         // control.ErrNoDest
	ClassRange         = "range"           // control.ErrRange
	ClassAFNoSupport   = "af_no_support"   // control.ErrAFNoSupport
	ClassInvalid       = "invalid"         // control.ErrInvalid, proto.ErrTimeoutRange
	ClassTooManyDests  = "too_many_dests"  // control.ErrTooManyDests
	ClassDaemonExists  = "daemon_exists"   // syscall.EEXIST of --start-daemon
	ClassNoDaemon      = "no_daemon"       // syscall.ESRCH of --stop-daemon
	ClassNoDevice      = "no_device"       // syscall.ENODEV: --mcast-interface names no interface
	ClassBadRequest    = "bad_request"     // ErrBadRequest
	ClassNotSaved      = "state_not_saved" // ErrNotSaved
	ClassInternal      = "internal"        // ErrInternal and anything unclassified
	ClassBadConfig     = "bad_config"      // ErrBadConfig
	ClassNoConfig      = "no_config"       // ErrNoConfig
)

// errorTable is the one mapping between errors, classes and HTTP
// statuses. ClassOf takes the first row whose error matches (errors.Is);
// ErrorOf the first row of a class, so a class's canonical error comes
// first. The statuses: 409 for "already there", 404 for "not there", 422
// for a well-formed request the configuration refuses, 400 for one that
// is not understood, 507 when an ID space is exhausted.
var errorTable = []struct {
	err    error
	class  string
	status int
}{
	// The API's own errors first: they may wrap others (a failed save
	// wraps the file system's errno).
	{ErrBadRequest, ClassBadRequest, http.StatusBadRequest},
	{ErrNotSaved, ClassNotSaved, http.StatusInternalServerError},
	{ErrInternal, ClassInternal, http.StatusInternalServerError},
	{ErrBadConfig, ClassBadConfig, http.StatusUnprocessableEntity},
	{ErrNoConfig, ClassNoConfig, http.StatusNotFound},
	{control.ErrServiceExists, ClassServiceExists, http.StatusConflict},
	{control.ErrSchedNotFound, ClassSchedNotFound, http.StatusUnprocessableEntity},
	{control.ErrNoService, ClassNoService, http.StatusNotFound},
	{control.ErrServiceUndef, ClassServiceUndef, http.StatusNotFound},
	{control.ErrDestExists, ClassDestExists, http.StatusConflict},
	{control.ErrNoDest, ClassNoDest, http.StatusNotFound},
	{control.ErrRange, ClassRange, http.StatusUnprocessableEntity},
	{control.ErrAFNoSupport, ClassAFNoSupport, http.StatusUnprocessableEntity},
	{control.ErrInvalid, ClassInvalid, http.StatusUnprocessableEntity},
	// The kernel refuses a timeout out of range with EINVAL.
	{proto.ErrTimeoutRange, ClassInvalid, http.StatusUnprocessableEntity},
	{control.ErrTooManyDests, ClassTooManyDests, http.StatusInsufficientStorage},
	{syscall.EEXIST, ClassDaemonExists, http.StatusConflict},
	{syscall.ESRCH, ClassNoDaemon, http.StatusNotFound},
	{syscall.ENODEV, ClassNoDevice, http.StatusUnprocessableEntity},
}

// ClassOf returns the class of err and its HTTP status; an error of no
// class is ClassInternal (500).
func ClassOf(err error) (class string, status int) {
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.class, e.status
		}
	}
	return ClassInternal, http.StatusInternalServerError
}

// ErrorOf returns the canonical error of a class (a control sentinel,
// a syscall.Errno or one of this package's errors), or nil for an unknown
// class.
func ErrorOf(class string) error {
	for _, e := range errorTable {
		if e.class == class {
			return e.err
		}
	}
	return nil
}

// Error is the wire form of a failure.
type Error struct {
	Class   string `json:"class"`
	Message string `json:"message"`
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error Error `json:"error"`
}

// wireError returns the wire form of err.
func wireError(err error) *Error {
	class, _ := ClassOf(err)
	return &Error{Class: class, Message: err.Error()}
}
