package vnic

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/rtnl"
)

// Cause classifies why a process or namespace could not be resolved. The
// exporter uses it as a label value; psnic uses it to choose a message.
type Cause string

// The causes; the comment on each says when it applies.
const (
	CauseNoProcess  Cause = "no_process"       // PID does not exist
	CauseVanished   Cause = "process_vanished" // exited while being resolved
	CauseZombie     Cause = "zombie"           // exited, not yet reaped: no namespace left
	CauseHostNetns  Cause = "host_netns"       // process shares the host's netns
	CauseNoVNIC     Cause = "no_vnic"          // netns has no interface paired with the host
	CausePermission Cause = "permission_denied"
	// A process skipped by a walk for permission, told apart by what a
	// capability would change: CauseNoPtrace while this process lacks
	// CAP_SYS_PTRACE (granting it would show what is missing), CauseProtected
	// when it holds it and is refused all the same (a security module, a
	// process of an outer user namespace, PID 1 on some hosts): no capability
	// helps.
	CauseNoPtrace  Cause = "no_cap_sys_ptrace"
	CauseProtected Cause = "protected"
	CauseNetlink   Cause = "netlink"
	CauseProcfs    Cause = "procfs" // unreadable or malformed procfs entry
)

// Error is a resolution failure for one PID, one line long, naming the PID,
// the cause and what to do about it.
type Error struct {
	PID   int
	Cause Cause
	Err   error // underlying error, may be nil
	// Missing names, for CausePermission, the capabilities this process
	// lacked when the error was made (newError reads them; Error only
	// formats).
	Missing []string
}

// newError makes an Error, reading which capabilities are missing when
// the cause is a refusal.
func newError(pid int, cause Cause, err error) *Error {
	e := &Error{PID: pid, Cause: cause, Err: err}
	if cause == CausePermission {
		e.Missing = MissingCapabilities()
	}
	return e
}

func (e *Error) Error() string {
	switch e.Cause {
	case CauseNoProcess:
		return fmt.Sprintf("pid %d: no such process (check the PID, and that --path.procfs is the /proc of the PID namespace it belongs to)", e.PID)
	case CauseVanished:
		return fmt.Sprintf("pid %d: process exited while being resolved (it may have been restarted: look up its new PID)", e.PID)
	case CauseZombie:
		return fmt.Sprintf("pid %d: process has exited and is a zombie waiting for its parent to reap it: it has no network namespace left (pass a live process of the container)", e.PID)
	case CauseHostNetns:
		return fmt.Sprintf("pid %d: process is in the host network namespace, so it has no container vNIC (pass the PID of a process inside the container)", e.PID)
	case CauseNoVNIC:
		return fmt.Sprintf("pid %d: network namespace has no host-side vNIC (only lo, or its interfaces are paired with other containers, not the host)", e.PID)
	case CausePermission:
		if len(e.Missing) > 0 {
			return fmt.Sprintf("pid %d: permission denied: %v (run as root, or grant %s)", e.PID, e.Err, strings.Join(e.Missing, " and "))
		}
		return fmt.Sprintf("pid %d: permission denied although this process holds CAP_SYS_PTRACE and CAP_NET_ADMIN: %v (the target is protected from it, e.g. by a security module or because it belongs to an outer user namespace; run from that namespace)", e.PID, e.Err)
	case CauseProcfs:
		return fmt.Sprintf("pid %d: cannot read its procfs entry: %v (check --path.procfs)", e.PID, e.Err)
	default:
		if errors.Is(e.Err, rtnl.ErrTargetIgnored) {
			return fmt.Sprintf("pid %d: %v", e.PID, e.Err)
		}
		return fmt.Sprintf("pid %d: netlink query failed: %v (retry; report a bug if it persists)", e.PID, e.Err)
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

// capabilities are the ones the resolver uses, by bit number.
var capabilities = []struct {
	bit  uint
	name string
}{
	{capSysPtrace, "CAP_SYS_PTRACE"}, // open /proc/PID/ns/net of other users' processes
	{12, "CAP_NET_ADMIN"},            // query links of another namespace, assign nsids
}

const capSysPtrace = 19

// CapNetBroadcast hears link events of all namespaces
// (NETLINK_LISTEN_ALL_NSID): the notification cache needs it.
const CapNetBroadcast = 11

// effectiveCaps returns the effective capability set of this process
// (capget(2), both 32-bit words of version 3).
func effectiveCaps() (uint64, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, fmt.Errorf("capget: %w", err)
	}
	return uint64(data[0].Effective) | uint64(data[1].Effective)<<32, nil
}

// MissingCapabilities names the capabilities the resolver needs that this
// process does not hold (every one of them when they cannot be read).
func MissingCapabilities() []string {
	eff, err := effectiveCaps()
	var missing []string
	for _, c := range capabilities {
		if err != nil || eff&(1<<c.bit) == 0 {
			missing = append(missing, c.name)
		}
	}
	return missing
}

// HasCapability reports whether this process holds capability bit.
func HasCapability(bit uint) bool {
	eff, err := effectiveCaps()
	return err == nil && eff&(1<<bit) != 0
}
