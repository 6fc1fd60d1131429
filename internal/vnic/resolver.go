// Package vnic finds, for processes in container network namespaces, the
// host-side virtual NICs their interfaces are paired with.
//
// Everything is asked of the kernel from the host namespace over one
// rtnetlink request socket (internal/rtnl): the namespace id the host gives a container's netns
// (RTM_GETNSID on an fd of /proc/PID/ns/net), that namespace's links
// (RTM_GETLINK aimed at the id with IFLA_TARGET_NETNSID, kernel 4.20+), and
// the host links they point at. The resolver never enters a namespace.
package vnic

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/rtnl"
)

// Netns is one non-host network namespace and its host-paired interfaces.
type Netns struct {
	Inode uint64 `json:"netns"`
	// PID is the namespace's holder: its oldest process, kept for as long
	// as it stays in the namespace (see holders). For a single-PID query,
	// the PID asked about.
	PID   int    `json:"pid"`
	VNICs []VNIC `json:"vnics"`
	// Thread is, for a single-PID query of a process whose main thread has
	// exited alone, the thread its namespace was read through (0
	// otherwise): its cgroup is the container's, the main thread's being /
	// on cgroup v1.
	Thread int `json:"-"`
}

// ErrProcfs wraps New's errors about the procfs path it was given (as
// opposed to the machine refusing a socket or the own namespace).
var ErrProcfs = errors.New("not a procfs")

// Options configure a Resolver.
type Options struct {
	// ProcfsPath is the procfs root processes are found under ("/proc").
	// It may be another PID namespace's /proc (e.g. the host's mounted at
	// /host/proc), as long as the exporter runs in the host's network
	// namespace.
	ProcfsPath string
	// EventBuffer is the receive buffer of the notification socket that
	// keeps ResolveAll's cache exact (DefaultEventBuffer when 0).
	EventBuffer int
	// NoCache makes every ResolveAll ask the kernel about every namespace.
	NoCache bool
	// Counters makes ResolveAll read fresh counters of both ends of every
	// vNIC (VNIC.ContainerStats, HostStats), whatever the cache holds:
	// every call asks again for each namespace's links that pair (a batch
	// of aimed gets; a dump aimed at a namespace that changed) and for the
	// host's counters (one RTM_GETSTATS dump). Without it VNICs carry no
	// counters (cached ones would be stale).
	Counters bool
}

// Resolver resolves processes to host vNICs. It is safe for concurrent use.
type Resolver struct {
	procRoot string
	hostIno  uint64
	hostNS   nsFile // our own netns: the host's
	nl       *rtnl.Conn
	// selfNSID caches the id the host gives itself, once the kernel has
	// assigned one (ids never change while a namespace lives); -1 until then.
	selfNSID atomic.Int64
	// canPtrace is true when this process may open other users' namespaces.
	canPtrace bool

	// mu guards the cache, and the watcher's reads: ResolveAll and
	// ReadNotifications both drain it.
	mu      sync.Mutex
	watcher *rtnl.Notifications // nil: no cache, every namespace is asked about every time
	cache   cache
	holders holders
	// counters: see Options.Counters.
	counters bool
	// watchErr says why there is no watcher, if there is none.
	watchErr error
}

// New checks that opts.ProcfsPath is a readable procfs root and opens the
// netlink socket. The host network namespace is the caller's own.
func New(opts Options) (*Resolver, error) {
	root := opts.ProcfsPath
	if root == "" {
		root = "/proc"
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return nil, fmt.Errorf("procfs path %s: %w: %w (point --path.procfs at a mounted procfs)", root, ErrProcfs, err)
	}
	if err := checkProcfs(root); err != nil {
		return nil, fmt.Errorf("procfs path %s: %w: %w (point --path.procfs at a mounted procfs)", root, ErrProcfs, err)
	}
	// Our own namespace, through the real /proc: the procfs root may belong
	// to another PID namespace, where "self" is not us.
	hostNS, err := openNS("/proc/self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("opening own network namespace: %w", err)
	}
	hostIno, err := hostNS.inode()
	if err != nil {
		hostNS.Close()
		return nil, fmt.Errorf("stat of own network namespace: %w", err)
	}
	nl, err := rtnl.Open()
	if err != nil {
		hostNS.Close()
		return nil, err
	}
	r := &Resolver{procRoot: root, hostIno: hostIno, hostNS: hostNS, nl: nl, canPtrace: HasCapability(capSysPtrace),
		counters: opts.Counters}
	r.holders.procRoot = root
	r.selfNSID.Store(noNSID)
	r.cache.reset()
	if opts.NoCache {
		r.watchErr = errors.New("disabled")
	} else {
		r.watcher, r.watchErr = rtnl.Listen(opts.EventBuffer)
	}
	return r, nil
}

// checkProcfs verifies that root is a procfs: the directory itself, the
// root of a procfs mount, or (for a root of links into one, as tests build)
// its self entry, must be on a filesystem of procfs type. A directory inside
// a procfs (/proc/sys, /proc/self) has no process directories: walking it
// would find no namespace and say nothing was wrong.
func checkProcfs(root string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return err
	}
	if st.Type == unix.PROC_SUPER_MAGIC {
		var dir unix.Stat_t
		if err := unix.Stat(root, &dir); err != nil {
			return err
		}
		if dir.Ino != procRootIno {
			return errors.New("a directory inside one, not the root of a procfs mount, where the process directories are")
		}
		return nil
	}
	self := filepath.Join(root, "self")
	if err := unix.Statfs(self, &st); err != nil {
		return fmt.Errorf("not a procfs and no %s", self)
	}
	if st.Type != unix.PROC_SUPER_MAGIC {
		return errors.New("not a procfs (filesystem type is not proc)")
	}
	return nil
}

// procRootIno is the inode of every procfs mount's root directory
// (PROC_ROOT_INO).
const procRootIno = 1

// Close releases the resolver's sockets and file descriptors.
func (r *Resolver) Close() error {
	r.nl.Close()
	if r.watcher != nil {
		r.watcher.Close()
	}
	return r.hostNS.Close()
}

// CacheError returns why ResolveAll cannot cache between calls (nil when it
// does): without the notification socket nothing cached could be trusted.
func (r *Resolver) CacheError() error { return r.watchErr }

// HostNetns returns the inode of the host network namespace.
func (r *Resolver) HostNetns() uint64 { return r.hostIno }

// ProcfsPath returns the procfs root the resolver walks.
func (r *Resolver) ProcfsPath() string { return r.procRoot }

// ResolvePID resolves the network namespace of one process. It asks only
// about that namespace and the host links it points at, so its cost does
// not grow with the number of host interfaces. Errors are *Error.
func (r *Resolver) ResolvePID(pid int) (Netns, error) {
	if pid <= 0 {
		return Netns{}, &Error{PID: pid, Cause: CauseNoProcess}
	}
	f, thread, err := r.openNetns(pid)
	if err != nil {
		return Netns{}, err
	}
	defer f.Close()
	ino, err := f.inode()
	if err != nil {
		return Netns{}, &Error{PID: pid, Cause: CauseProcfs, Err: err}
	}
	if ino == r.hostIno {
		return Netns{}, &Error{PID: pid, Cause: CauseHostNetns}
	}
	vnics, err := r.resolveNetns(pid, f, r.nl.LinkByIndex)
	if err != nil {
		return Netns{}, err
	}
	return Netns{Inode: ino, PID: pid, VNICs: vnics, Thread: thread}, nil
}

// Snapshot is the result of resolving every non-host namespace.
type Snapshot struct {
	// Namespaces lists every non-host namespace that was resolved, sorted
	// by inode; those without host-side vNICs have none in VNICs.
	Namespaces []Netns
	Walk       WalkStats
	// Failed counts namespaces that could not be resolved, by cause.
	// A namespace whose processes all vanished during the scrape is normal
	// churn: it is counted in Vanished, not here.
	Failed   map[Cause]int
	Vanished int
	// Unresolved lists the inodes of the namespaces counted in Failed.
	Unresolved []uint64
	// Processes lists, by inode, the PIDs the walk found in every non-host
	// namespace, each list in ascending order: what a change stream tracks,
	// without a second walk.
	Processes map[uint64][]int
	// Reused counts namespaces answered from the cache, Queried those the
	// kernel was asked about (whether or not it answered); Overflow is true when notifications were
	// lost since the last call and the cache was rebuilt.
	Reused, Queried int
	// Refreshed counts cached namespaces whose links were read again only
	// for fresh counters (Options.Counters), aimed at their known id (a
	// namespace without a link that pairs needs no request); they are also
	// counted in Reused.
	Refreshed int
	Overflow  bool
	// HostDumped is true when the host links were listed afresh (a link
	// changed somewhere since the last call, or there is no cache).
	HostDumped bool
	// Blind is true when processes were skipped for permission while this
	// process lacks CAP_SYS_PTRACE (Walk.Skipped[CauseNoPtrace]): whole
	// namespaces may be missing, and granting the capability would show
	// them. (With it, a refusal comes from something no capability
	// overrides, such as an outer user namespace: CauseProtected.)
	Blind bool
	// HostByLink is true when the host links changed all through every
	// attempt to list them, and each host end was asked for by index.
	HostByLink bool
}

// Omission is one reason a Snapshot left namespaces out, with the line
// that tells an operator.
type Omission struct {
	Cause Cause
	// Skipped is true for processes the walk skipped (Walk.Skipped),
	// false for namespaces that failed (Failed).
	Skipped bool
	Text    string // "3 namespace(s) not resolved: permission_denied", ...
}

// Omissions lists what s left out: the namespaces not resolved, by cause
// in order, then the processes skipped without CAP_SYS_PTRACE (Blind) and
// those whose ns/net is no network namespace link (a wrong procfs). The
// processes refused although CAP_SYS_PTRACE is held (CauseProtected) are
// not among them: no capability would show them.
func (s Snapshot) Omissions() []Omission {
	var out []Omission
	for _, cause := range slices.Sorted(maps.Keys(s.Failed)) {
		text := fmt.Sprintf("%d namespace(s) not resolved: %s", s.Failed[cause], cause)
		if cause == CausePermission {
			if missing := MissingCapabilities(); len(missing) > 0 {
				text += " (run as root, or grant " + strings.Join(missing, " and ") + ")"
			}
		}
		out = append(out, Omission{Cause: cause, Text: text})
	}
	if s.Blind {
		out = append(out, Omission{Cause: CauseNoPtrace, Skipped: true, Text: fmt.Sprintf(
			"%d of %d processes skipped (%s): permission denied without CAP_SYS_PTRACE, so their namespaces are missing (run as root, or grant CAP_SYS_PTRACE)",
			s.Walk.Skipped[CauseNoPtrace], s.Walk.Processes, CauseNoPtrace)})
	}
	if n := s.Walk.Skipped[CauseProcfs]; n > 0 {
		out = append(out, Omission{Cause: CauseProcfs, Skipped: true, Text: fmt.Sprintf(
			"%d of %d processes skipped (%s): their ns/net could not be read as a network namespace link (check --path.procfs)",
			n, s.Walk.Processes, CauseProcfs)})
	}
	return out
}

// ResolveAll walks procfs and resolves every network namespace other than
// the host's, each once however many processes share it.
//
// What it learns is cached and kept exact by notifications: a link event
// in a namespace invalidates that namespace, any link event at all the
// host links, the deletion of a namespace id its entry, and lost
// notifications (socket overflow) everything; an entry the host links
// contradict is asked again. Pending notifications are applied after the
// walk and before anything cached is used, so every change made before a
// call shows in its result.
func (r *Resolver) ResolveAll() (Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	snap := Snapshot{Failed: map[Cause]int{}}
	var pre *prefetch
	if r.counters && r.watcher != nil {
		// The notifications already queued first, so that the prefetch
		// asks nothing of the namespaces, or the host links, they changed.
		if err := r.drainInto(nil); err != nil {
			snap.Overflow = true
		}
		pre = r.startRefresh()
		defer pre.wait()
	}
	// Walk first, then apply the notifications (those queued since the
	// drain above, with counters): a namespace that died before the walk
	// saw its inode reused had its RTM_DELNSID queued before the kernel
	// freed the inode, so the drain drops its entry before any cached
	// entry is used for the new namespace.
	found, walkStats, err := walk(r.procRoot, r.hostIno, r.canPtrace)
	if err != nil {
		return Snapshot{}, err
	}
	snap.Walk = walkStats
	snap.Processes = make(map[uint64][]int, len(found))
	for ino, ns := range found {
		pids := slices.Clone(ns.PIDs)
		slices.Sort(pids)
		snap.Processes[ino] = pids
	}
	snap.Blind = walkStats.Skipped[CauseNoPtrace] > 0
	r.holders.choose(found)
	if r.watcher == nil {
		r.cache.reset()
	} else if err := r.drainInto(nil); err != nil {
		// Overflow, or a broken socket: the cache starts afresh.
		snap.Overflow = true
	}
	if len(found) == 0 {
		r.cache.prune(found)
		return snap, nil
	}
	if r.cache.host == nil {
		hostLinks, err := r.nl.Links(noNSID)
		switch {
		case err == nil:
			r.cache.setHost(hostLinks)
			snap.HostDumped = true
		case errors.Is(err, rtnl.ErrDumpInterrupted):
			// The host links kept changing for the whole budget: ask for
			// the host ends one by one, as ResolvePID does, and check
			// every cached namespace afresh, since nothing can be checked
			// against a host table.
			snap.HostByLink = true
			for _, e := range r.cache.byInode {
				e.stale = true
			}
		default:
			return Snapshot{}, fmt.Errorf("listing host links: %w", err)
		}
	}
	lookup := r.nl.LinkByIndex
	if byIndex := r.cache.host; byIndex != nil {
		lookup = func(index int, l *link) (bool, error) {
			var ok bool
			*l, ok = byIndex[index]
			return ok, nil
		}
		self, err := r.selfID()
		if err != nil {
			return Snapshot{}, fmt.Errorf("asking the host's own namespace id: %w", err)
		}
		for _, e := range r.cache.byInode {
			if !e.stale && !consistent(e, r.cache.hostPeers, self) {
				e.stale = true
			}
		}
		if r.counters && !snap.HostDumped {
			lookup = r.withHostStats(lookup, pre)
		}
	}
	var aimed map[uint64]int
	var fresh map[uint64]bool
	if r.counters {
		aimed = map[uint64]int{}
		fresh = r.refreshAll(pre, found)
	}
	for _, ns := range found {
		vnics, err := r.resolveCached(ns, lookup, &snap, aimed, fresh[ns.Inode])
		r.holders.keep(ns)
		switch cause := CauseOf(err); {
		case err == nil, cause == CauseNoVNIC:
			snap.Namespaces = append(snap.Namespaces, Netns{Inode: ns.Inode, PID: ns.PID, VNICs: vnics})
		case cause == CauseVanished:
			snap.Vanished++
		default:
			snap.Failed[cause]++
			snap.Unresolved = append(snap.Unresolved, ns.Inode)
		}
	}
	r.cache.prune(found)
	r.dropReassigned(&snap, aimed)
	sort.Slice(snap.Namespaces, func(i, j int) bool { return snap.Namespaces[i].Inode < snap.Namespaces[j].Inode })
	return snap, nil
}

// resolveCached pairs a namespace's links, from the cache when they are
// there and still valid, from the kernel otherwise.
func (r *Resolver) resolveCached(ns *netnsProcs, host hostLookup, snap *Snapshot, aimed map[uint64]int, fresh bool) ([]VNIC, error) {
	c := r.cache.byInode[ns.Inode]
	if aimed != nil && c != nil && (fresh || r.refresh(c)) {
		aimed[ns.Inode] = c.nsid
		snap.Refreshed++
		snap.Reused++
	} else if c == nil || c.stale || aimed != nil {
		snap.Queried++
		f, err := r.openAnyFound(ns)
		if err != nil {
			return nil, err
		}
		nsid, links, err := r.netnsLinks(ns.PID, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		c = r.cache.store(ns.Inode, nsid, links)
	} else {
		snap.Reused++
	}
	return r.pairLinks(ns.PID, c.nsid, c.links, host)
}

// openAnyFound opens the namespace through its holder or, if that has
// gone, the oldest other process the walk found in it that is still there
// (as holders choose one), and makes that ns.PID. Only when all of them
// have gone is the namespace reported vanished.
func (r *Resolver) openAnyFound(ns *netnsProcs) (nsFile, error) {
	f, err := r.openFound(ns.Inode, ns.PID)
	if CauseOf(err) != CauseVanished || len(ns.PIDs) < 2 {
		return f, err
	}
	held := ns.PID
	rest := slices.DeleteFunc(slices.Clone(ns.PIDs), func(p int) bool { return p == held })
	for len(rest) > 0 {
		pid := oldest(rest, r.holders.startTime)
		rest = slices.DeleteFunc(rest, func(p int) bool { return p == pid })
		if f, err = r.openFound(ns.Inode, pid); CauseOf(err) != CauseVanished {
			ns.PID = pid
			return f, err
		}
	}
	return -1, err
}

// openFound opens the namespace of a PID the walk found, checking the PID
// is still in it (PIDs are reused).
func (r *Resolver) openFound(inode uint64, pid int) (nsFile, error) {
	f, _, err := r.openNetns(pid)
	if err != nil {
		if c := CauseOf(err); c == CauseNoProcess || c == CauseZombie {
			return -1, &Error{PID: pid, Cause: CauseVanished}
		}
		return -1, err
	}
	ino, err := f.inode()
	if err != nil {
		f.Close()
		return -1, &Error{PID: pid, Cause: CauseProcfs, Err: err}
	}
	if ino != inode {
		f.Close()
		return -1, &Error{PID: pid, Cause: CauseVanished}
	}
	return f, nil
}

// openNetns opens /proc/PID/ns/net. Holding it open pins the namespace, so
// its nsid cannot be freed and given to another namespace mid-query.
//
// It opens without blocking and checks that what it opened is a network
// namespace: under a wrong --path.procfs, ns/net may be anything, and a
// FIFO would block a blocking open forever.
func (r *Resolver) openNetns(pid int) (f nsFile, thread int, err error) {
	dir := filepath.Join(r.procRoot, strconv.Itoa(pid))
	path := filepath.Join(dir, "ns", "net")
	f, err = openNS(path)
	if err == nil {
		if err := f.checkNetns(); err != nil {
			f.Close()
			return -1, 0, &Error{PID: pid, Cause: CauseProcfs, Err: fmt.Errorf("%s: %w", path, err)}
		}
		return f, 0, nil
	}
	cause := classify(err)
	// A refusal too: the kernel answers EACCES, not ENOENT, when the
	// process is reaped between the lookup of PID and the link (see reaped).
	if cause == CauseVanished || cause == CausePermission {
		if _, statErr := os.Stat(dir); errors.Is(statErr, os.ErrNotExist) {
			cause = CauseNoProcess
		} else if zombie(dir) {
			if f, thread, ok := openThreadNetns(r.procRoot, pid); ok {
				return f, thread, nil
			}
			cause = CauseZombie
		}
	}
	return -1, 0, newError(pid, cause, err)
}

// openThreadNetns opens the namespace of a thread of pid that runs on
// after its main thread exited (threadNetns).
func openThreadNetns(procRoot string, pid int) (f nsFile, tid int, ok bool) {
	var buf [64]byte
	tid, _, ok = threadNetns(procRoot, pid, buf[:])
	if !ok {
		return -1, 0, false
	}
	f, err := openNS(filepath.Join(procRoot, strconv.Itoa(pid), "task", strconv.Itoa(tid), "ns", "net"))
	if err != nil {
		return -1, 0, false
	}
	if f.checkNetns() != nil {
		f.Close()
		return -1, 0, false
	}
	return f, tid, true
}

// nsFile is an open namespace file (/proc/PID/ns/net): a bare descriptor,
// which the resolver only hands to the kernel by number (fstat, ioctl,
// RTM_GETNSID). An *os.File would enter it in the runtime's poller, whose
// first use brings up epoll, an eventfd and their bookkeeping: start-up
// that `psnic PID` paid on every run for nothing.
type nsFile int

// openNS opens path without blocking (a FIFO under a wrong --path.procfs
// would block a blocking open forever); its errors are *fs.PathError, as
// os.Open's.
func openNS(path string) (nsFile, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return nsFile(fd), nil
	}
}

func (f nsFile) fd() int { return int(f) }

// Close closes the descriptor.
func (f nsFile) Close() error { return unix.Close(int(f)) }

func (f nsFile) inode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// nsGetNstype is NS_GET_NSTYPE, _IO(0xb7, 0x3): the CLONE_NEW* type of a
// namespace file.
const nsGetNstype = 0xb703

var errNotNetns = errors.New("not a network namespace")

// checkNetns verifies that f is a namespace file (on nsfs) of a network
// namespace.
func (f nsFile) checkNetns() error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f), &st); err != nil {
		return err
	}
	if st.Type != unix.NSFS_MAGIC {
		return errNotNetns
	}
	typ, err := unix.IoctlRetInt(int(f), nsGetNstype)
	if err != nil {
		return fmt.Errorf("NS_GET_NSTYPE: %w", err)
	}
	if typ != unix.CLONE_NEWNET {
		return errNotNetns
	}
	return nil
}

// reaped reports whether the process whose /proc directory is dir has
// gone since a namespace link of it was refused: the kernel answers EACCES,
// not ENOENT, when the process is reaped between the lookup of PID and the
// link (proc_ns_get_link and proc_ns_readlink find no task), and a refusal
// then means nothing about permissions.
func reaped(dir string) bool {
	_, err := os.Stat(dir)
	return errors.Is(err, os.ErrNotExist) || zombie(dir)
}

// zombie reports whether the process at dir has exited and waits to be
// reaped: its state, after the parenthesised command, is Z.
func zombie(dir string) bool {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// resolveNetns lists the links of the namespace open at f and pairs them
// with host links found through host.
func (r *Resolver) resolveNetns(pid int, f nsFile, host hostLookup) ([]VNIC, error) {
	nsid, links, err := r.netnsLinks(pid, f)
	if err != nil {
		return nil, err
	}
	return r.pairLinks(pid, nsid, links, host)
}

// netnsLinks returns the id the host gives the namespace open at f,
// assigning one if it has none, and the namespace's links.
func (r *Resolver) netnsLinks(pid int, f nsFile) (int, []link, error) {
	fd := f.fd()
	nsid, err := r.nl.NSIDOf(fd)
	if err == nil && nsid == noNSID {
		if err = r.nl.AssignNSID(fd); err == nil {
			nsid, err = r.nl.NSIDOf(fd)
		}
	}
	if err != nil {
		return 0, nil, netlinkError(pid, err)
	}
	if nsid == noNSID {
		return 0, nil, netlinkError(pid, errors.New("kernel assigned no namespace id"))
	}
	links, err := r.nl.Links(nsid)
	if err != nil {
		return 0, nil, netlinkError(pid, err)
	}
	return nsid, links, nil
}

func (r *Resolver) pairLinks(pid, nsid int, links []link, host hostLookup) ([]VNIC, error) {
	self, err := r.selfID()
	if err != nil {
		return nil, netlinkError(pid, err)
	}
	vnics, err := pair(links, nsid, self, host)
	if err != nil {
		return nil, netlinkError(pid, err)
	}
	r.counterPolicy(vnics)
	if len(vnics) == 0 {
		return nil, &Error{PID: pid, Cause: CauseNoVNIC}
	}
	return vnics, nil
}

// selfID returns the id the host namespace gives itself. The kernel assigns
// it the first time it reports a link whose peer is in the host to a
// socket in the host, so it is asked for after a namespace's links.
func (r *Resolver) selfID() (int, error) {
	if id := r.selfNSID.Load(); id != noNSID {
		return int(id), nil
	}
	id, err := r.nl.NSIDOf(r.hostNS.fd())
	if err != nil {
		return 0, err
	}
	if id != noNSID {
		r.selfNSID.Store(int64(id))
	}
	return id, nil
}

// isHostNSID reports whether a notification's source namespace id is the
// host's: none (the host before it numbers itself) or the host's own id.
func (r *Resolver) isHostNSID(from int) bool {
	if from == noNSID {
		return true
	}
	self, err := r.selfID()
	// Unknown while the host has no id for itself: then its own events
	// carry none, and any id is another namespace's.
	return err == nil && self != noNSID && from == self
}

func netlinkError(pid int, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return newError(pid, CausePermission, err)
	}
	return &Error{PID: pid, Cause: CauseNetlink, Err: err}
}
