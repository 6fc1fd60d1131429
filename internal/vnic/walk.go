package vnic

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// WalkStats counts what a walk of procfs saw.
type WalkStats struct {
	Processes int // process directories looked at
	// Skipped counts processes whose netns could not be read, by cause
	// (no CAP_SYS_PTRACE, protected, vanished during the walk, malformed
	// entry).
	Skipped map[Cause]int
}

// netnsProcs is one non-host network namespace found by a walk.
type netnsProcs struct {
	Inode uint64
	PID   int   // the process naming it, the oldest: set by holders.choose
	PIDs  []int // every PID seen in it, in walk order
}

// walk reads the netns of every process under procRoot and groups the
// processes outside the host netns by namespace inode.
//
// It is the floor of a scrape's cost, so it does only what the floor does:
// one readdir of procRoot, then one readlinkat of PID/ns/net per process,
// relative to the open procRoot and into one buffer. (procfs.FS.AllProcs
// and Proc.Namespaces would read every namespace link of every process,
// and the procfs package's start-up alone costs psnic 2.4 ms here.)
//
// A process refused for permission is counted as CauseNoPtrace when
// canPtrace is false, CauseProtected when it is true.
func walk(procRoot string, hostIno uint64, canPtrace bool) (map[uint64]*netnsProcs, WalkStats, error) {
	stats := WalkStats{Skipped: map[Cause]int{}}
	dir, err := os.Open(procRoot)
	if err != nil {
		return nil, stats, fmt.Errorf("listing processes in %s: %w", procRoot, err)
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return nil, stats, fmt.Errorf("listing processes in %s: %w", procRoot, err)
	}
	dirfd := int(dir.Fd())
	buf := make([]byte, 64)
	found := map[uint64]*netnsProcs{}
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue // not a process directory
		}
		stats.Processes++
		n, err := unix.Readlinkat(dirfd, name+"/ns/net", buf)
		if err != nil && classify(err) == CauseVanished {
			// Named by a thread that runs on, if its main thread exited
			// alone: what nsenter -t and psnic accept for it.
			if tid, target, ok := threadNetns(procRoot, pid, buf); ok {
				pid, n, err = tid, copy(buf, target), nil
			}
		}
		if err != nil {
			cause := classify(err)
			switch {
			case cause == CausePermission && reaped(filepath.Join(procRoot, name)):
				cause = CauseVanished
			case cause == CausePermission:
				cause = skipCause(canPtrace)
			}
			stats.Skipped[cause]++
			continue
		}
		ino, err := parseNetnsLink(string(buf[:n]))
		if err != nil {
			stats.Skipped[CauseProcfs]++
			continue
		}
		if ino == hostIno {
			continue
		}
		ns := found[ino]
		if ns == nil {
			ns = &netnsProcs{Inode: ino}
			found[ino] = ns
		}
		ns.PIDs = append(ns.PIDs, pid)
	}
	if stats.Processes == 0 {
		// A mounted procfs always shows a process (its PID namespace's
		// init at least): procRoot was unmounted since New checked it.
		return nil, stats, fmt.Errorf("listing processes in %s: no process directories (is a procfs still mounted there?)", procRoot)
	}
	return found, stats, nil
}

// threadNetns finds, for process pid whose own ns/net has gone (ENOENT),
// a thread of it that runs on: its main thread may have exited alone (a
// main that ends in pthread_exit), leaving a zombie by its state that
// lives on in its threads' namespace. It returns the first other thread
// and its ns/net link target, read into buf, provided every other thread
// that has one agrees: a thread that moved itself elsewhere (setns) does
// not speak for the process. ok is false when no thread has one: the
// process has gone, or is a zombie indeed. It costs one stat when the
// process has no other thread (its task directory's link count is 2 plus
// its threads).
func threadNetns(procRoot string, pid int, buf []byte) (tid int, target string, ok bool) {
	task := filepath.Join(procRoot, strconv.Itoa(pid), "task")
	var st unix.Stat_t
	if unix.Stat(task, &st) != nil || st.Nlink <= 3 {
		return 0, "", false
	}
	dir, err := os.Open(task)
	if err != nil {
		return 0, "", false
	}
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return 0, "", false
	}
	for _, name := range names {
		t, err := strconv.Atoi(name)
		if err != nil || t == pid {
			continue
		}
		n, err := unix.Readlink(filepath.Join(task, name, "ns", "net"), buf)
		switch {
		case err != nil: // exited meanwhile
		case target == "":
			tid, target = t, string(buf[:n])
		case string(buf[:n]) != target:
			return 0, "", false
		}
	}
	return tid, target, target != ""
}

// skipCause is why a process refused for permission was skipped, as far
// as a capability could help.
func skipCause(canPtrace bool) Cause {
	if canPtrace {
		return CauseProtected
	}
	return CauseNoPtrace
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
