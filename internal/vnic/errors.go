package vnic

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// Cause classifies why a process or namespace could not be resolved. The
// exporter uses it as a label value; psnic uses it to choose a message.
type Cause string

const (
	CauseNoProcess  Cause = "no_process"       // PID does not exist
	CauseVanished   Cause = "process_vanished" // exited while being resolved
	CauseHostNetns  Cause = "host_netns"       // process shares the host's netns
	CauseNoVNIC     Cause = "no_vnic"          // netns has no interface paired with the host
	CausePermission Cause = "permission_denied"
	CauseNetlink    Cause = "netlink"
	CauseProcfs     Cause = "procfs" // unreadable or malformed procfs entry
)

// Error is a resolution failure for one PID, one line long, naming the PID,
// the cause and what to do about it.
type Error struct {
	PID   int
	Cause Cause
	Err   error // underlying error, may be nil
}

func (e *Error) Error() string {
	switch e.Cause {
	case CauseNoProcess:
		return fmt.Sprintf("pid %d: no such process (check the PID, and that --path.procfs is the /proc of the PID namespace it belongs to)", e.PID)
	case CauseVanished:
		return fmt.Sprintf("pid %d: process exited while being resolved (it may have been restarted: look up its new PID)", e.PID)
	case CauseHostNetns:
		return fmt.Sprintf("pid %d: process is in the host network namespace, so it has no container vNIC (pass the PID of a process inside the container)", e.PID)
	case CauseNoVNIC:
		return fmt.Sprintf("pid %d: network namespace has no host-side vNIC (only lo, or its interfaces are paired with other containers, not the host)", e.PID)
	case CausePermission:
		return fmt.Sprintf("pid %d: permission denied: %v (run as root, or grant CAP_SYS_PTRACE to read other processes' namespaces and CAP_NET_ADMIN to query them)", e.PID, e.Err)
	case CauseProcfs:
		return fmt.Sprintf("pid %d: cannot read its procfs entry: %v (check --path.procfs)", e.PID, e.Err)
	default:
		return fmt.Sprintf("pid %d: netlink query failed: %v (the kernel must be 4.20 or later; retry, and report a bug if it persists)", e.PID, e.Err)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// CauseOf returns the Cause of err, or CauseNetlink for errors that carry
// none.
func CauseOf(err error) Cause {
	var e *Error
	if errors.As(err, &e) {
		return e.Cause
	}
	return CauseNetlink
}

// classify turns an error from reading /proc/PID/... into a Cause.
// ENOENT and ESRCH mean the process is gone.
func classify(err error) Cause {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, unix.ESRCH):
		return CauseVanished
	case errors.Is(err, fs.ErrPermission), errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return CausePermission
	default:
		return CauseProcfs
	}
}
