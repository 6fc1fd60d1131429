package vnic

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// WalkStats counts what a walk of procfs saw.
type WalkStats struct {
	Processes int // process directories looked at
	// Skipped counts processes whose netns could not be read, by cause
	// (permission denied, vanished during the walk, malformed entry).
	Skipped map[Cause]int
}

// netnsProcs is one non-host network namespace found by a walk.
type netnsProcs struct {
	Inode uint64
	PID   int // lowest PID seen in it
	Procs int // processes seen in it
}

// walk reads the netns of every process under procRoot and groups the
// processes outside the host netns by namespace inode.
//
// It reads only /proc/PID/ns/net, with one readlink per process, rather
// than procfs.Proc.Namespaces, which reads every namespace link of the
// process: the walk is the floor of a scrape's cost.
func walk(proc procfs.FS, procRoot string, hostIno uint64) (map[uint64]*netnsProcs, WalkStats, error) {
	stats := WalkStats{Skipped: map[Cause]int{}}
	procs, err := proc.AllProcs()
	if err != nil {
		return nil, stats, fmt.Errorf("listing processes in %s: %w", procRoot, err)
	}
	found := map[uint64]*netnsProcs{}
	for _, p := range procs {
		stats.Processes++
		target, err := os.Readlink(filepath.Join(procRoot, strconv.Itoa(p.PID), "ns", "net"))
		if err != nil {
			stats.Skipped[classify(err)]++
			continue
		}
		ino, err := parseNetnsLink(target)
		if err != nil {
			stats.Skipped[CauseProcfs]++
			continue
		}
		if ino == hostIno {
			continue
		}
		ns := found[ino]
		if ns == nil {
			ns = &netnsProcs{Inode: ino, PID: p.PID}
			found[ino] = ns
		}
		ns.Procs++
		if p.PID < ns.PID {
			ns.PID = p.PID
		}
	}
	return found, stats, nil
}

// parseNetnsLink returns the inode in a /proc/PID/ns/net link target,
// which reads "net:[4026531840]".
func parseNetnsLink(target string) (uint64, error) {
	digits, ok := strings.CutPrefix(target, "net:[")
	if ok {
		digits, ok = strings.CutSuffix(digits, "]")
	}
	if !ok {
		return 0, fmt.Errorf("not a network namespace link: %q", target)
	}
	ino, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || ino == 0 || digits[0] == '0' {
		return 0, fmt.Errorf("not a network namespace link: %q", target)
	}
	return ino, nil
}
