package vnic

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// capget(2) reads the same effective set the kernel prints in
// /proc/self/status.
func TestEffectiveCapsMatchesStatus(t *testing.T) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	var want uint64
	found := false
	for _, line := range strings.Split(string(status), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			if want, err = strconv.ParseUint(strings.TrimSpace(hex), 16, 64); err != nil {
				t.Fatal(err)
			}
			found = true
		}
	}
	if !found {
		t.Skip("no CapEff line")
	}
	got, err := effectiveCaps()
	if err != nil || got != want {
		t.Fatalf("effectiveCaps() = %#x, %v; /proc/self/status says %#x", got, err, want)
	}
}

// A refusal names the capabilities missing when it happened; Error only
// formats them.
func TestPermissionErrorNamesMissing(t *testing.T) {
	e := &Error{PID: 7, Cause: CausePermission, Err: os.ErrPermission, Missing: []string{"CAP_SYS_PTRACE", "CAP_NET_ADMIN"}}
	if msg := e.Error(); !strings.Contains(msg, "grant CAP_SYS_PTRACE and CAP_NET_ADMIN") || !strings.Contains(msg, "pid 7") {
		t.Fatalf("message %q", msg)
	}
	e.Missing = nil
	if msg := e.Error(); strings.Contains(msg, "run as root") {
		t.Fatalf("message %q tells a process holding every capability to run as root", msg)
	}
	if got := newError(7, CausePermission, os.ErrPermission).Missing; !slices.Equal(got, MissingCapabilities()) {
		t.Fatalf("newError recorded %v, MissingCapabilities says %v", got, MissingCapabilities())
	}
}
