package vnicwatch

import (
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/procevents"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// backend is the I/O the engine does: *vnic.Resolver and a cgroupid.Lookup
// in production, hand-built answers in tests.
type backend interface {
	ResolveAll() (vnic.Snapshot, error)
	NSIDs() map[uint64]int
	ResolveNamespace(pid int, inode uint64) (nsid int, vnics []vnic.VNIC, err error)
	NetnsOf(pid int) (uint64, error)
	IsHost(from int) bool
	HostNetns() uint64
	Oldest(pids []int) int
	Identity(netns uint64, pid int) cgroupid.Identity
}

// netns is what the stream knows of one namespace that holds processes.
type netns struct {
	inode uint64
	nsid  int // vnic.NoNSID until resolved
	pid   int // the process the rows name: the oldest, kept while it stays
	pids  map[int]struct{}
	id    cgroupid.Identity // of pid
	rows  map[Key]Row
}

// engine turns notifications and process events into changes. It is not
// safe for concurrent use: Stream.Run owns it.
type engine struct {
	b      backend
	ns     map[uint64]*netns
	byNSID map[int]*netns
	byPID  map[int]*netns
	byHost map[int]map[*netns]struct{} // host ifindex -> namespaces with a vNIC on it
	dirty  map[*netns]struct{}         // to re-resolve at the next flush
	out    []Change
	report func(error)
	// incomplete is why the last full resolution left namespaces out, as
	// reported: the same causes again are not repeated at every resync.
	incomplete []vnic.Omission
}

func newEngine(b backend, report func(error)) *engine {
	e := &engine{b: b, report: report}
	e.reset()
	return e
}

func (e *engine) reset() {
	e.ns = map[uint64]*netns{}
	e.byNSID = map[int]*netns{}
	e.byPID = map[int]*netns{}
	e.byHost = map[int]map[*netns]struct{}{}
	e.dirty = map[*netns]struct{}{}
}

// rows returns every vNIC the stream knows.
func (e *engine) rows() map[Key]Row {
	m := map[Key]Row{}
	for _, n := range e.ns {
		for k, r := range n.rows {
			m[k] = r
		}
	}
	return m
}

// full walks procfs and resolves every namespace: at start, after lost
// events, and every resync interval. A namespace that could not be resolved
// this time (a passing netlink error) keeps its vNICs rather than have them
// removed and added again: an attacher would detach and reattach for
// nothing.
func (e *engine) full() error {
	snap, err := e.b.ResolveAll() // one walk: snap.Processes
	if err != nil {
		return err
	}
	e.reportIncomplete(snap)
	procs := snap.Processes
	nsids := e.b.NSIDs()
	old := e.ns
	before := e.rows()
	e.reset()
	for _, r := range snap.Namespaces {
		n := e.attach(r.Inode, r.PID, procs[r.Inode])
		if nsid, ok := nsids[r.Inode]; ok {
			n.nsid = nsid
			e.byNSID[nsid] = n
		}
		n.id = e.b.Identity(r.Inode, r.PID) // remembered by the lookup
		e.setRows(n, r.VNICs)
	}
	for _, ino := range snap.Unresolved {
		o := old[ino]
		if o == nil {
			continue
		}
		n := e.attach(ino, o.pid, procs[ino])
		n.nsid, n.id = o.nsid, o.id
		if n.nsid != vnic.NoNSID {
			e.byNSID[n.nsid] = n
		}
		n.rows = o.rows
		e.indexHosts(n)
	}
	e.out = append(e.out, Diff(before, e.rows())...)
	return nil
}

// ErrIncomplete is what Report is told, wrapped, when a full resolution
// (at start, after lost events, at each resync) left namespaces out: ones
// the kernel would not answer about (without CAP_NET_ADMIN, say), or
// processes this one may not look into without CAP_SYS_PTRACE. It is told
// again only when the causes change. The stream goes on without them.
// Processes refused although CAP_SYS_PTRACE is held (protected by a
// security module, or of an outer user namespace) are left out without a
// word: no capability would show them.
var ErrIncomplete = errors.New("incomplete")

// reportIncomplete reports what snap left out, unless the last full
// resolution left namespaces out for the same causes.
func (e *engine) reportIncomplete(snap vnic.Snapshot) {
	left := snap.Omissions()
	// The same causes again are not news, whatever the counts.
	if slices.EqualFunc(left, e.incomplete, func(a, b vnic.Omission) bool { return a.Cause == b.Cause && a.Skipped == b.Skipped }) {
		return
	}
	e.incomplete = left
	for _, o := range left {
		e.report(fmt.Errorf("%w: %s", ErrIncomplete, o.Text))
	}
}

// attach starts tracking namespace inode with its processes.
func (e *engine) attach(inode uint64, pid int, pids []int) *netns {
	n := &netns{inode: inode, nsid: vnic.NoNSID, pid: pid, pids: map[int]struct{}{pid: {}}, rows: map[Key]Row{}}
	for _, p := range pids {
		n.pids[p] = struct{}{}
	}
	for p := range n.pids {
		e.byPID[p] = n
	}
	e.ns[inode] = n
	return n
}

// setRows replaces n's vNICs, keeping the host-ifindex index.
func (e *engine) setRows(n *netns, vnics []vnic.VNIC) {
	e.unindexHosts(n)
	n.rows = make(map[Key]Row, len(vnics))
	for _, v := range vnics {
		r := NewRow(n.inode, n.pid, v, n.id)
		n.rows[keyOf(r)] = r
	}
	e.indexHosts(n)
}

func (e *engine) indexHosts(n *netns) {
	for _, r := range n.rows {
		m := e.byHost[r.HostIfindex]
		if m == nil {
			m = map[*netns]struct{}{}
			e.byHost[r.HostIfindex] = m
		}
		m[n] = struct{}{}
	}
}

func (e *engine) unindexHosts(n *netns) {
	for _, r := range n.rows {
		if m := e.byHost[r.HostIfindex]; m != nil {
			delete(m, n)
			if len(m) == 0 {
				delete(e.byHost, r.HostIfindex)
			}
		}
	}
}

// drop forgets n: its vNICs are removed.
func (e *engine) drop(n *netns) {
	if e.ns[n.inode] != n {
		return
	}
	old := n.rows
	e.unindexHosts(n)
	n.rows = nil
	delete(e.ns, n.inode)
	if e.byNSID[n.nsid] == n {
		delete(e.byNSID, n.nsid)
	}
	for p := range n.pids {
		if e.byPID[p] == n {
			delete(e.byPID, p)
		}
	}
	delete(e.dirty, n)
	e.out = append(e.out, Diff(old, nil)...)
}

// notification marks the namespace a link or namespace-id event concerns.
func (e *engine) notification(nf vnic.Notification) {
	host := e.b.IsHost(nf.From)
	switch nf.Type {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		if !host {
			e.mark(e.byNSID[nf.From])
			return
		}
		// A host link: the namespace its peer is in, and the namespaces
		// with a vNIC on it (a renamed host end, a stacked link's parent).
		if nf.Link.PeerNSID != vnic.NoNSID {
			e.mark(e.byNSID[nf.Link.PeerNSID])
		}
		for n := range e.byHost[nf.Link.Index] {
			e.mark(n)
		}
	case unix.RTM_DELNSID:
		// Only the host's deletions are ours: another namespace numbers
		// namespaces its own way. Even so the namespace is asked, not
		// dropped: the id may have gone to a new namespace, which a
		// process event attached, before this deletion was read.
		if host {
			if n := e.byNSID[nf.NSID]; n != nil {
				delete(e.byNSID, nf.NSID)
				e.mark(n)
			}
		}
	}
}

func (e *engine) mark(n *netns) {
	if n != nil {
		e.dirty[n] = struct{}{}
	}
}

// process applies one process event.
func (e *engine) process(ev procevents.Event) {
	if ev.PID != ev.TGID {
		// A thread: its process is what counts, but for a process the walk
		// named by a thread, its main thread having exited alone.
		if ev.Type == procevents.Exit {
			e.untrack(ev.PID)
		}
		return
	}
	switch ev.Type {
	case procevents.Exit:
		e.untrack(ev.PID)
	case procevents.Fork:
		// A child shares its parent's namespace unless it was made with a
		// new one; only children of processes in tracked namespaces can
		// bring one that is tracked.
		if e.byPID[ev.Parent] == nil {
			return
		}
		e.moved(ev.PID)
	case procevents.Exec:
		e.moved(ev.PID)
	}
}

// moved reads which namespace pid is in now and tracks it there.
func (e *engine) moved(pid int) {
	ino, err := e.b.NetnsOf(pid)
	if err != nil {
		return // gone already: its exit event follows
	}
	cur := e.byPID[pid]
	if cur != nil && cur.inode == ino {
		return
	}
	if cur != nil {
		e.untrack(pid)
	}
	if ino == e.b.HostNetns() {
		return
	}
	n := e.ns[ino]
	if n == nil {
		n = e.attach(ino, pid, nil)
		e.mark(n)
		return
	}
	// A newcomer never takes the name: the oldest process keeps it.
	n.pids[pid] = struct{}{}
	e.byPID[pid] = n
}

// untrack forgets pid; its namespace loses its name or its last process.
func (e *engine) untrack(pid int) {
	n := e.byPID[pid]
	if n == nil {
		return
	}
	delete(e.byPID, pid)
	delete(n.pids, pid)
	if pid == n.pid {
		e.rename(n)
	} else if len(n.pids) == 0 {
		e.drop(n)
	}
}

// rename gives n's name to the oldest of its processes that is still in it
// (one readlink each, so the name does not pass through processes whose
// exits are queued), or drops n when none is.
func (e *engine) rename(n *netns) {
	for len(n.pids) > 0 {
		pids := make([]int, 0, len(n.pids))
		for p := range n.pids {
			pids = append(pids, p)
		}
		p := e.b.Oldest(pids)
		if ino, err := e.b.NetnsOf(p); err == nil && ino == n.inode {
			e.relabel(n, p)
			return
		}
		e.forget(n, p)
	}
	e.drop(n)
}

func (e *engine) forget(n *netns, pid int) {
	delete(n.pids, pid)
	if e.byPID[pid] == n {
		delete(e.byPID, pid)
	}
}

// relabel makes pid the process n's vNICs are shown with.
func (e *engine) relabel(n *netns, pid int) {
	n.pid = pid
	n.id = e.b.Identity(n.inode, pid)
	old := n.rows
	n.rows = make(map[Key]Row, len(old))
	for k, r := range old {
		r.PID = pid
		r.ContainerID, r.PodUID, r.Runtime = n.id.ContainerID, n.id.PodUID, n.id.Runtime
		n.rows[k] = r
	}
	e.out = append(e.out, Diff(old, n.rows)...)
}

// flush re-resolves the namespaces events marked, each once.
func (e *engine) flush() {
	for n := range e.dirty {
		delete(e.dirty, n)
		e.refresh(n)
	}
}

// refresh re-resolves one namespace through the process it is named by;
// if that one has left, the name passes on first.
func (e *engine) refresh(n *netns) {
	for e.ns[n.inode] == n {
		pid := n.pid
		nsid, vnics, err := e.b.ResolveNamespace(pid, n.inode)
		switch cause := vnic.CauseOf(err); {
		case err != nil && (cause == vnic.CauseVanished || cause == vnic.CauseNoProcess):
			e.forget(n, pid)
			e.rename(n)
			continue
		case err != nil:
			e.report(fmt.Errorf("namespace %d: %w", n.inode, err))
			return // keep what is known; the next event or resync retries
		}
		if e.byNSID[n.nsid] == n {
			delete(e.byNSID, n.nsid)
		}
		n.nsid = nsid
		e.byNSID[nsid] = n
		n.id = e.b.Identity(n.inode, pid) // remembered by the lookup
		old := n.rows
		e.setRows(n, vnics)
		e.out = append(e.out, Diff(old, n.rows)...)
		return
	}
}

// take returns the changes since the last take.
func (e *engine) take() []Change {
	out := e.out
	e.out = nil
	return out
}
