package cgroupid

import "sync"

// Lookup is the one identity join of the exporter, psnic and psnic watch:
// the identity of a namespace's process, read once and remembered while
// that process keeps the namespace. A process's container does not change,
// so a scrape or a stream event does not need to read a thousand cgroup
// files again. It is safe for concurrent use.
//
// Entries nobody asked for during a whole period (at least twice as many
// lookups as there are entries) are forgotten, so namespaces and processes
// that are gone do not pile up.
type Lookup struct {
	read func(pid int) (Identity, error)

	mu        sync.Mutex
	cur, prev map[lookupKey]Identity
	calls     int // since the last rotation
	period    int // calls between rotations
}

// A PID is only trusted together with its namespace: PIDs are reused, but
// not while the namespace (which the process pinned) is still the same.
type lookupKey struct {
	netns uint64
	pid   int
}

const minPeriod = 1024

// NewLookup returns a Lookup reading procRoot/PID/cgroup.
func NewLookup(procRoot string) *Lookup {
	return newLookup(func(pid int) (Identity, error) { return Read(procRoot, pid) })
}

func newLookup(read func(pid int) (Identity, error)) *Lookup {
	return &Lookup{read: read, cur: map[lookupKey]Identity{}, prev: map[lookupKey]Identity{}, period: minPeriod}
}

// Identity returns the identity of process pid in network namespace netns.
// A failed read (the process is gone, or unreadable) is returned and not
// remembered; callers that show identities treat it as the zero Identity.
func (l *Lookup) Identity(netns uint64, pid int) (Identity, error) {
	k := lookupKey{netns, pid}
	l.mu.Lock()
	l.calls++
	if l.calls >= l.period {
		// Whatever was used in the last period is in cur; the rest goes.
		l.prev, l.cur, l.calls = l.cur, map[lookupKey]Identity{}, 0
		l.period = max(minPeriod, 2*len(l.prev))
	}
	id, ok := l.cur[k]
	if !ok {
		if id, ok = l.prev[k]; ok {
			l.cur[k] = id
		}
	}
	l.mu.Unlock()
	if ok {
		return id, nil
	}
	id, err := l.read(pid)
	if err != nil {
		return Identity{}, err
	}
	l.mu.Lock()
	l.cur[k] = id
	l.mu.Unlock()
	return id, nil
}

// size returns how many entries are remembered (tests).
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
