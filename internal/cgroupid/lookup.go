package cgroupid

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Lookup is the one identity join of the exporter, psnic and psnic watch.
// It reads a process's /proc/PID/cgroup on every call, since a process can
// be moved to another cgroup at any time (and its container with it), and
// remembers what each distinct content parses to, so that a scrape of a
// thousand namespaces parses only what changed. It is safe for concurrent
// use.
//
// Contents nobody's process had during a whole period (at least twice as
// many lookups as there are entries) are forgotten, so cgroups that are
// gone do not pile up.
type Lookup struct {
	read  func(pid int) ([]byte, error)
	parse func([]byte) Identity

	mu        sync.Mutex
	cur, prev map[string]Identity // by /proc/PID/cgroup content
	calls     int                 // since the last rotation
	period    int                 // calls between rotations
}

const minPeriod = 1024

// NewLookup returns a Lookup reading procRoot/PID/cgroup, trusting the
// outermost runtime cgroup.
func NewLookup(procRoot string) *Lookup { return Options{}.Lookup(procRoot) }

// Lookup returns a Lookup reading procRoot/PID/cgroup as o says.
func (o Options) Lookup(procRoot string) *Lookup {
	return newLookup(func(pid int) ([]byte, error) {
		return os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	}, o.Parse)
}

func newLookup(read func(pid int) ([]byte, error), parse func([]byte) Identity) *Lookup {
	return &Lookup{read: read, parse: parse, cur: map[string]Identity{}, prev: map[string]Identity{}, period: minPeriod}
}

// Identity returns the identity of process pid, read now. The first
// argument, the network namespace the process was found in, is not needed:
// the identity is that of the cgroup the process is in at the time of the
// call.
// A failed read (the process is gone, or unreadable) is returned; callers
// that show identities treat it as the zero Identity.
func (l *Lookup) Identity(_ uint64, pid int) (Identity, error) {
	content, err := l.read(pid)
	if err != nil {
		return Identity{}, err
	}
	l.mu.Lock()
	l.calls++
	if l.calls >= l.period {
		// Whatever was used in the last period is in cur; the rest goes.
		l.prev, l.cur, l.calls = l.cur, map[string]Identity{}, 0
		l.period = max(minPeriod, 2*len(l.prev))
	}
	id, ok := l.cur[string(content)]
	if !ok {
		if id, ok = l.prev[string(content)]; ok {
			l.cur[string(content)] = id
		}
	}
	l.mu.Unlock()
	if ok {
		return id, nil
	}
	id = l.parse(content)
	l.mu.Lock()
	l.cur[string(content)] = id
	l.mu.Unlock()
	return id, nil
}

// size returns how many contents are remembered (tests).
func (l *Lookup) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.cur)
	for k := range l.prev {
		if _, ok := l.cur[k]; !ok {
			n++
		}
	}
	return n
}
